//! The traffic control objects of the tc-filter model: an ingress qdisc on
//! a link and, under it, a u32 filter matching every frame whose mirred
//! action redirects the frame to another link's egress.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcActionMirror, TcActionMirrorOption, TcActionOption,
    TcActionType, TcAttribute, TcFilterU32, TcFilterU32Option, TcHandle, TcMessage, TcMirror,
    TcMirrorActionType, TcOption, TcU32Key, TcU32Selector, TcU32SelectorFlags,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::socket::Netlink;
use super::NetError;

/// The ingress qdisc's handle (`ffff:`), the parent of its filters.
const INGRESS_HANDLE: TcHandle = TcHandle {
    major: 0xffff,
    minor: 0,
};
/// The priority of the redirect filter.
const FILTER_PRIORITY: u16 = 1;
/// What the kernel answers when the qdisc or filter to delete is gone
/// (EINVAL: "cannot find specified qdisc" on older kernels).
const GONE: [i32; 3] = [libc::ENOENT, libc::EINVAL, libc::ENODEV];

/// `tcm_info` of a filter: priority above, protocol (network byte order,
/// here ETH_P_ALL: every frame) below.
fn filter_info() -> u32 {
    let all = u16::try_from(libc::ETH_P_ALL).unwrap_or(3).to_be();
    (u32::from(FILTER_PRIORITY) << 16) | u32::from(all)
}

fn ingress_qdisc(index: u32) -> TcMessage {
    let mut message = TcMessage::with_index(index as i32);
    message.header.parent = TcHandle::INGRESS;
    message.header.handle = INGRESS_HANDLE;
    message
        .attributes
        .push(TcAttribute::Kind("ingress".to_string()));
    message
}

/// Adds the ingress qdisc to link `index`; one already there is an error
/// (hull does not share a link's ingress with anyone).
pub(super) fn add_ingress(nl: &mut Netlink, index: u32, name: &str) -> Result<(), NetError> {
    nl.request(
        &format!("add ingress qdisc on {name}"),
        RouteNetlinkMessage::NewQueueDiscipline(ingress_qdisc(index)),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

/// Removes the ingress qdisc of link `index` (and with it its filters).
pub(super) fn delete_ingress(nl: &mut Netlink, index: u32, name: &str) -> Result<(), NetError> {
    nl.request_tolerating(
        &format!("delete ingress qdisc of {name}"),
        RouteNetlinkMessage::DelQueueDiscipline(ingress_qdisc(index)),
        &GONE,
    )
}

/// Redirects every frame arriving on link `from` to the egress of `to`.
pub(super) fn add_redirect(
    nl: &mut Netlink,
    from: u32,
    from_name: &str,
    to: u32,
) -> Result<(), NetError> {
    let mut selector = TcU32Selector::default();
    selector.flags = TcU32SelectorFlags::Terminal;
    selector.nkeys = 1;
    // Mask 0, value 0: every frame matches.
    selector.keys = vec![TcU32Key::default()];
    let mut mirror = TcMirror::default();
    mirror.generic.action = TcActionType::Stolen;
    mirror.eaction = TcMirrorActionType::EgressRedir;
    mirror.ifindex = to;
    let mut action = TcAction::default();
    action.attributes = vec![
        TcActionAttribute::Kind(TcActionMirror::KIND.to_string()),
        TcActionAttribute::Options(vec![TcActionOption::Mirror(TcActionMirrorOption::Parms(
            mirror,
        ))]),
    ];
    let mut message = TcMessage::with_index(from as i32);
    message.header.parent = INGRESS_HANDLE;
    message.header.info = filter_info();
    message.attributes = vec![
        TcAttribute::Kind(TcFilterU32::KIND.to_string()),
        TcAttribute::Options(vec![
            TcOption::U32(TcFilterU32Option::Selector(selector)),
            TcOption::U32(TcFilterU32Option::Action(vec![action])),
        ]),
    ];
    nl.request(
        &format!("add redirect filter on {from_name}"),
        RouteNetlinkMessage::NewTrafficFilter(message),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

/// Removes the redirect filter of link `index`.
pub(super) fn delete_redirect(nl: &mut Netlink, index: u32, name: &str) -> Result<(), NetError> {
    let mut message = TcMessage::with_index(index as i32);
    message.header.parent = INGRESS_HANDLE;
    message.header.info = filter_info();
    nl.request_tolerating(
        &format!("delete redirect filter of {name}"),
        RouteNetlinkMessage::DelTrafficFilter(message),
        &GONE,
    )
}

/// The qdiscs of link `index`.
#[cfg(test)]
pub(super) fn qdiscs(nl: &mut Netlink, index: u32) -> Result<Vec<TcMessage>, NetError> {
    let replies = nl.dump(
        "list qdiscs",
        RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default()),
    )?;
    Ok(replies
        .into_iter()
        .filter_map(|r| match r {
            RouteNetlinkMessage::NewQueueDiscipline(q) if q.header.index == index as i32 => Some(q),
            _ => None,
        })
        .collect())
}

/// The ingress filters of link `index`.
#[cfg(test)]
pub(super) fn ingress_filters(nl: &mut Netlink, index: u32) -> Result<Vec<TcMessage>, NetError> {
    let mut request = TcMessage::with_index(index as i32);
    request.header.parent = INGRESS_HANDLE;
    match nl.dump(
        "list filters",
        RouteNetlinkMessage::GetTrafficFilter(request),
    ) {
        Ok(replies) => Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewTrafficFilter(f) => Some(f),
                _ => None,
            })
            .collect()),
        // No ingress qdisc: no filters.
        Err(e) if e.errno().is_some_and(|errno| GONE.contains(&errno)) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The link a u32 filter's mirred action redirects to, if it is one.
#[cfg(test)]
pub(super) fn redirect_target(filter: &TcMessage) -> Option<u32> {
    let options = filter.attributes.iter().find_map(|a| match a {
        TcAttribute::Options(o) => Some(o),
        _ => None,
    })?;
    options.iter().find_map(|o| match o {
        TcOption::U32(TcFilterU32Option::Action(actions)) => actions.iter().find_map(|action| {
            action.attributes.iter().find_map(|a| match a {
                TcActionAttribute::Options(opts) => opts.iter().find_map(|o| match o {
                    TcActionOption::Mirror(TcActionMirrorOption::Parms(m))
                        if m.eaction == TcMirrorActionType::EgressRedir =>
                    {
                        Some(m.ifindex)
                    }
                    _ => None,
                }),
                _ => None,
            })
        }),
        _ => None,
    })
}
