//! `NormalPath::parse` on arbitrary request paths, checked for what the rest of the gateway
//! relies on, not only for panics. On Ok, the path starts with `/`, has no empty, `.` or
//! `..` segment, no control character, no `\`; encoding it for an upstream and parsing that
//! again gives the same path (the upstream sees what the router saw); and a normal path is
//! its own normal form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtls_gateway::path::NormalPath;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = NormalPath::parse(raw) else {
        return;
    };
    let normal = path.as_str();
    assert!(
        normal.starts_with('/'),
        "{raw:?} -> {normal:?}: not absolute"
    );
    assert!(
        !normal.contains("//"),
        "{raw:?} -> {normal:?}: an empty segment"
    );
    for segment in normal.split('/') {
        assert!(
            segment != "." && segment != "..",
            "{raw:?} -> {normal:?}: a dot segment"
        );
    }
    assert!(
        !normal.chars().any(|c| c.is_control() || c == '\\'),
        "{raw:?} -> {normal:?}: a control character or a backslash"
    );

    let encoded = path.encoded();
    match NormalPath::parse(&encoded) {
        Ok(again) => assert_eq!(
            again.as_str(),
            normal,
            "{raw:?} -> {normal:?} -> encoded {encoded:?} -> another path"
        ),
        Err(e) => panic!("{raw:?} -> {normal:?} -> encoded {encoded:?} is refused: {e}"),
    }
    if !normal.contains('%') {
        let again = NormalPath::parse(normal).map(|p| p.as_str().to_owned());
        assert_eq!(
            again.as_deref(),
            Ok(normal),
            "{raw:?} -> {normal:?}: not a fixed point"
        );
    }
});
