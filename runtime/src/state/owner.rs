//! The user name of a uid, as `runc list` shows a container's owner.

use std::ffi::CStr;

/// The name of `uid` from the user database, or `#<uid>` if it has none.
pub fn user_name(uid: u32) -> String {
    let mut buf = vec![0u8; 4096];
    // SAFETY: an all-zero passwd is a valid value to be filled in.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to a live local of the right type; `buf` is
    // writable for its whole length, which is what is passed.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return format!("#{uid}");
    }
    // SAFETY: on success pw_name points to a NUL-terminated string in `buf`,
    // which outlives this borrow.
    let name = unsafe { CStr::from_ptr(pwd.pw_name) };
    name.to_string_lossy().into_owned()
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
