//! The guest's network: `Request::ConfigureNetwork` applied to the links.

use agent_protocol::network::NetworkConfig;
use agent_protocol::wire::{ErrorCode, Response};

/// Applies `config` (validated first; a bad one changes nothing).
pub fn configure(config: &NetworkConfig) -> Response {
    if let Err(e) = config.validate() {
        return Response::error(ErrorCode::BadRequest, format!("network configuration: {e}"));
    }
    Response::error(
        ErrorCode::Internal,
        "configuring the guest network is not built yet",
    )
}
