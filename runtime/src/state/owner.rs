//! The user name of a uid, as `runc list` shows a container's owner.

use nix::unistd::{Uid, User};

/// The name of `uid` from the user database, or `#<uid>` if it has none.
pub fn user_name(uid: u32) -> String {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => format!("#{uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_nobody_in_particular() {
        assert_eq!(user_name(0), "root");
        assert_eq!(user_name(3_999_999_999), "#3999999999");
    }
}
