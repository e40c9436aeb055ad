//! SPF macro strings (RFC 7208 §7): parsing and expansion with every macro letter, never a
//! panic; an expanded name is at most 253 octets unless it is one label.
#![no_main]
use libfuzzer_sys::fuzz_target;
use maildrift::checks::spf::macros::{
    MacroContext, parse_domain_spec, parse_explanation, parse_macro_string,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the macro string, the rest the sender (to vary local parts).
    let (spec, sender) = text.split_once('\n').unwrap_or((text, "user@example.com"));
    let context = MacroContext {
        sender,
        ip: "2001:db8::1".parse().unwrap(),
        helo: "mail.example.net",
        domain: "example.com",
        validated: "unknown",
    };
    for parsed in [
        parse_macro_string(spec, true),
        parse_macro_string(spec, false),
        parse_domain_spec(spec),
        parse_explanation(spec),
    ]
    .into_iter()
    .flatten()
    {
        if let Some(name) = parsed.expand("example.com") {
            // §7.3: left-hand labels are dropped until the name fits; a single label left
            // longer than that cannot be shortened (the DNS layer refuses the name).
            assert!(name.len() <= 253 || !name.contains('.'), "{name}");
        }
        let _ = parsed.expand_for(&context);
    }
});
