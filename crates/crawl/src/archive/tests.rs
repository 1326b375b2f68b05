use super::*;

#[test]
fn garbage_and_empty_bodies_are_not_archives() {
    let limits = ArchiveLimits::default();
    assert_eq!(sniff(b""), None);
    assert_eq!(members(b"", &limits), Err(ArchiveError::NotAnArchive));
    assert_eq!(members(b"<html>hello</html>", &limits), Err(ArchiveError::NotAnArchive));
}
