//! SVG Tiny Portable/Secure in its basics, as BIMI receivers require of a logo: the root is
//! `<svg version="1.2" baseProfile="tiny-ps">` with a `<title>`, no scripts or event
//! handlers, no references outside the document, no raster images or animation, a square
//! `viewBox`. A small scanner over the markup (not a full XML parser): it reports what it
//! finds, quoting the offending element or attribute.

/// Elements SVG Tiny PS leaves out (scripting, embedding, animation).
const FORBIDDEN: [&str; 9] = [
    "script",
    "foreignobject",
    "image",
    "iframe",
    "animate",
    "animatemotion",
    "animatetransform",
    "animatecolor",
    "set",
];

/// One start tag: its name and attributes (names lower-cased).
struct Tag {
    name: String,
    attributes: Vec<(String, String)>,
}

impl Tag {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The start tags of `text` in order, comments, CDATA, declarations and end tags skipped.
fn start_tags(text: &str) -> Result<Vec<Tag>, String> {
    let mut tags = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let skip_to = |rest: &str, end: &str| -> Result<usize, String> {
            rest.find(end)
                .map(|i| i + end.len())
                .ok_or_else(|| format!("unterminated markup (no {end:?})"))
        };
        let skipped = if rest.starts_with("!--") {
            Some(skip_to(rest, "-->")?)
        } else if rest.starts_with("![CDATA[") {
            Some(skip_to(rest, "]]>")?)
        } else if rest.starts_with('?') {
            Some(skip_to(rest, "?>")?)
        } else if rest.starts_with('!') || rest.starts_with('/') {
            Some(skip_to(rest, ">")?)
        } else {
            None
        };
        if let Some(skip) = skipped {
            rest = &rest[skip..];
            continue;
        }
        let (tag, used) = start_tag(rest)?;
        tags.push(tag);
        rest = &rest[used..];
    }
    Ok(tags)
}

/// Parses one start tag after its `<`; returns it and the bytes used.
fn start_tag(text: &str) -> Result<(Tag, usize), String> {
    let name_end = text
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .ok_or("unterminated start tag")?;
    let name = text[..name_end].to_ascii_lowercase();
    let mut attributes = Vec::new();
    let mut at = name_end;
    loop {
        let rest = &text[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if trimmed.starts_with("/>") {
            return Ok((Tag { name, attributes }, at + 2));
        }
        if trimmed.starts_with('>') {
            return Ok((Tag { name, attributes }, at + 1));
        }
        let eq = trimmed
            .find('=')
            .ok_or_else(|| format!("<{name}>: attribute without a value"))?;
        let attribute = trimmed[..eq].trim().to_ascii_lowercase();
        let after = trimmed[eq + 1..].trim_start();
        let quote = after
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or_else(|| format!("<{name}>: unquoted value of {attribute}"))?;
        let value_end = after[1..]
            .find(quote)
            .ok_or_else(|| format!("<{name}>: unterminated value of {attribute}"))?;
        let value = after[1..1 + value_end].to_owned();
        at += (trimmed.len() - after.len()) + value_end + 2;
        attributes.push((attribute, value));
    }
}

/// What is wrong with `body` as a BIMI logo (empty: nothing found).
pub fn problems(body: &[u8]) -> Vec<String> {
    let Ok(text) = std::str::from_utf8(body) else {
        return vec!["the logo is not UTF-8 text".to_owned()];
    };
    let tags = match start_tags(text) {
        Ok(tags) => tags,
        Err(error) => return vec![format!("the logo is not well-formed markup: {error}")],
    };
    let Some(root) = tags.first().filter(|t| t.name == "svg") else {
        return vec!["the logo is not an SVG document (its root element is not <svg>)".to_owned()];
    };
    let mut out = Vec::new();
    if root.attribute("baseprofile") != Some("tiny-ps") {
        out.push(format!(
            "<svg baseProfile={:?}>: SVG Tiny PS requires baseProfile=\"tiny-ps\"",
            root.attribute("baseprofile").unwrap_or("")
        ));
    }
    if root.attribute("version") != Some("1.2") {
        out.push(format!(
            "<svg version={:?}>: SVG Tiny PS requires version=\"1.2\"",
            root.attribute("version").unwrap_or("")
        ));
    }
    for attribute in ["x", "y"] {
        if root.attribute(attribute).is_some() {
            out.push(format!(
                "<svg {attribute}=…>: not allowed on the root of SVG Tiny PS"
            ));
        }
    }
    if let Some(view_box) = root.attribute("viewbox") {
        let numbers: Vec<f64> = view_box
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        match numbers.as_slice() {
            [_, _, w, h] if (w - h).abs() < f64::EPSILON && *w > 0.0 => {}
            _ => out.push(format!("viewBox={view_box:?}: the logo must be square")),
        }
    }
    if !tags.iter().any(|t| t.name == "title") {
        out.push("no <title>: SVG Tiny PS requires one".to_owned());
    }
    for tag in &tags {
        if FORBIDDEN.contains(&tag.name.as_str()) {
            out.push(format!("<{}>: not allowed in SVG Tiny PS", tag.name));
        }
        for (name, value) in &tag.attributes {
            if name.starts_with("on") {
                out.push(format!(
                    "<{} {name}=…>: event handlers (scripts) are not allowed",
                    tag.name
                ));
            }
            let reference = name == "href" || name.ends_with(":href");
            if reference && !value.trim_start().starts_with('#') {
                out.push(format!(
                    "<{} {name}={value:?}>: references outside the document are not allowed",
                    tag.name
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<!-- brand logo -->
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.2" baseProfile="tiny-ps" viewBox="0 0 64 64">
  <title>Brand</title>
  <defs><linearGradient id="g"><stop offset="0" stop-color="#123"/></linearGradient></defs>
  <circle cx="32" cy="32" r="30" fill="url(#g)"/>
  <use xlink:href="#g"/>
</svg>"##;

    #[test]
    fn a_tiny_ps_logo_passes() {
        assert_eq!(problems(GOOD.as_bytes()), Vec::<String>::new());
    }

    #[test]
    fn each_problem_is_named() {
        let bad = r#"<svg version="1.1" viewBox="0 0 64 32" x="1"><script>alert(1)</script>
<image href="https://tracker.example/p.png"/><rect onclick="x()"/></svg>"#;
        let found = problems(bad.as_bytes()).join("\n");
        for wanted in [
            "baseProfile=\"\"",
            "version=\"1.1\"",
            "<svg x=…>",
            "must be square",
            "no <title>",
            "<script>: not allowed",
            "<image>: not allowed",
            "references outside the document",
            "<rect onclick=…>",
        ] {
            assert!(found.contains(wanted), "{wanted}\n{found}");
        }
        assert!(problems(b"<html><body/></html>")[0].contains("not an SVG document"));
        assert!(
            problems(b"<svg version=\"1.2")
                .join("")
                .contains("not well-formed")
        );
        assert!(problems(&[0xff, 0xfe]).join("").contains("not UTF-8"));
    }

    #[test]
    fn truncated_or_odd_markup_never_panics() {
        let odd = "<svg a='1' b=\"2\"/><!--x--><![CDATA[<y>]]><?pi?><!DOCTYPE svg><é attr=\"ü\">";
        for text in [GOOD, odd] {
            for end in 0..=text.len() {
                let _ = problems(&text.as_bytes()[..end]);
            }
        }
    }
}
