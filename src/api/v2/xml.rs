//! The flat XML messages of API v2: `<xml><field>value</field>...</xml>`,
//! parsed defensively and written with CDATA.
//!
//! Notifications arrive from the internet, and this is where payment SDKs
//! have been broken into (the 2018 XXE in the official Java SDK). The parser
//! accepts exactly the shape WeChat sends and rejects everything else with a
//! clear error: any `<!DOCTYPE` (so no entity can ever be declared), any
//! entity reference but the five predefined ones and character references,
//! attributes, nested elements, duplicated elements, processing
//! instructions, text outside the fields, and bodies over
//! [`MAX_XML_BYTES`]. Nothing is ever fetched or expanded.

use std::collections::BTreeMap;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::Reader;

/// The largest XML body accepted (WeChat's messages are a few KiB at most).
pub const MAX_XML_BYTES: usize = 64 * 1024;

/// The most fields a message may have.
const MAX_FIELDS: usize = 256;

/// Why an XML message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The body is larger than [`MAX_XML_BYTES`].
    #[error("XML body larger than {MAX_XML_BYTES} bytes")]
    TooLarge,
    /// The body declares a document type (the door to XXE and entity expansion).
    #[error("XML with a DOCTYPE is refused")]
    DocType,
    /// An entity reference other than the five predefined ones.
    #[error("XML entity reference &{0}; is refused")]
    Entity(String),
    /// A field appears twice (e.g. a second `<total_fee>` or `<sign>`).
    #[error("XML element <{0}> appears more than once")]
    Duplicate(String),
    /// Anything else that is not `<xml>` holding flat text fields.
    #[error("XML is not a flat <xml> message: {0}")]
    Shape(String),
}

/// Parses a flat `<xml>` message into its fields (CDATA and text alike,
/// entity references resolved, surrounding whitespace of a field kept as sent).
pub fn parse(body: &[u8]) -> Result<BTreeMap<String, String>, XmlError> {
    parse_with_root(body, "xml")
}

/// Like [`parse`], for a message whose root element is `root` (the
/// decrypted `req_info` of a refund notification is `<root>`).
pub fn parse_with_root(body: &[u8], root: &str) -> Result<BTreeMap<String, String>, XmlError> {
    if body.len() > MAX_XML_BYTES {
        return Err(XmlError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| XmlError::Shape("not UTF-8".into()))?;
    let mut reader = Reader::from_str(text);
    let mut fields = BTreeMap::new();
    // Where we are: before <xml>, inside <xml>, inside a field, after </xml>.
    let mut in_root = false;
    let mut done = false;
    let mut field: Option<(String, String)> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError::Shape(format!("malformed XML ({e})")))?;
        match event {
            Event::Eof => break,
            Event::DocType(_) => return Err(XmlError::DocType),
            Event::Decl(_) if !in_root && !done && fields.is_empty() => {}
            Event::Decl(_) | Event::PI(_) => {
                return Err(XmlError::Shape("processing instruction".into()))
            }
            Event::Comment(_) => {}
            Event::Start(start) => {
                if start.attributes().next().is_some() {
                    return Err(XmlError::Shape("attributes are not allowed".into()));
                }
                let name = element_name(start.name().as_ref())?;
                if done || field.is_some() {
                    return Err(XmlError::Shape(format!("nested element <{name}>")));
                }
                if !in_root {
                    if name != root {
                        return Err(XmlError::Shape(format!(
                            "root element is <{name}>, not <{root}>"
                        )));
                    }
                    in_root = true;
                } else {
                    if fields.contains_key(&name) {
                        return Err(XmlError::Duplicate(name));
                    }
                    if fields.len() >= MAX_FIELDS {
                        return Err(XmlError::Shape("too many fields".into()));
                    }
                    field = Some((name, String::new()));
                }
            }
            Event::Empty(start) => {
                let name = element_name(start.name().as_ref())?;
                if !in_root || done || field.is_some() {
                    return Err(XmlError::Shape(format!(
                        "unexpected empty element <{name}/>"
                    )));
                }
                if start.attributes().next().is_some() {
                    return Err(XmlError::Shape("attributes are not allowed".into()));
                }
                if fields.insert(name.clone(), String::new()).is_some() {
                    return Err(XmlError::Duplicate(name));
                }
            }
            Event::End(end) => {
                let name = element_name(end.name().as_ref())?;
                match field.take() {
                    Some((open, value)) if open == name => {
                        if fields.insert(open.clone(), value).is_some() {
                            return Err(XmlError::Duplicate(open));
                        }
                    }
                    Some((open, _)) => {
                        return Err(XmlError::Shape(format!("<{open}> closed by </{name}>")))
                    }
                    None if in_root && name == root => {
                        in_root = false;
                        done = true;
                    }
                    None => return Err(XmlError::Shape(format!("unexpected </{name}>"))),
                }
            }
            Event::Text(t) => {
                let t = t
                    .xml10_content()
                    .map_err(|_| XmlError::Shape("bad text encoding".into()))?;
                match &mut field {
                    Some((_, value)) => value.push_str(&t),
                    None if t.trim().is_empty() => {}
                    None => return Err(XmlError::Shape("text outside a field".into())),
                }
            }
            Event::CData(c) => match &mut field {
                Some((_, value)) => {
                    let c = c
                        .decode()
                        .map_err(|_| XmlError::Shape("bad CDATA encoding".into()))?;
                    value.push_str(&c);
                }
                None => return Err(XmlError::Shape("CDATA outside a field".into())),
            },
            Event::GeneralRef(r) => {
                let Some((_, value)) = &mut field else {
                    return Err(XmlError::Shape("entity reference outside a field".into()));
                };
                if r.is_char_ref() {
                    let c = r
                        .resolve_char_ref()
                        .ok()
                        .flatten()
                        .ok_or_else(|| XmlError::Shape("invalid character reference".into()))?;
                    value.push(c);
                } else {
                    let name = r
                        .decode()
                        .map_err(|_| XmlError::Shape("bad entity name".into()))?;
                    match resolve_predefined_entity(&name) {
                        Some(resolved) => value.push_str(resolved),
                        None => return Err(XmlError::Entity(name.chars().take(40).collect())),
                    }
                }
            }
        }
    }
    if !done {
        return Err(XmlError::Shape("no complete <xml> element".into()));
    }
    Ok(fields)
}

fn element_name(raw: &[u8]) -> Result<String, XmlError> {
    let name = std::str::from_utf8(raw)
        .map_err(|_| XmlError::Shape("element name is not UTF-8".into()))?;
    if name.is_empty()
        || name.len() > 64
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(XmlError::Shape(format!(
            "element name {:?} is not a field name",
            name.chars().take(40).collect::<String>()
        )));
    }
    Ok(name.to_owned())
}

/// Writes fields as a flat `<xml>` message, every value in CDATA (a value
/// holding `]]>` is split across two CDATA sections).
pub fn write<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::from("<xml>");
    for (key, value) in fields {
        out.push('<');
        out.push_str(key);
        out.push_str("><![CDATA[");
        out.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
        out.push_str("]]></");
        out.push_str(key);
        out.push('>');
    }
    out.push_str("</xml>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(xml: &str) -> BTreeMap<String, String> {
        parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{xml}: {e}"))
    }

    #[test]
    fn reads_text_cdata_and_predefined_entities() {
        let f = ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>\n  <return_code><![CDATA[SUCCESS]]></return_code>\n  <total_fee>1</total_fee>\n  <body>a &amp; b &lt;c&gt; &#x4e2d;&#25991;</body>\n  <attach/>\n  <!-- note -->\n</xml>\n");
        assert_eq!(f["return_code"], "SUCCESS");
        assert_eq!(f["total_fee"], "1");
        assert_eq!(f["body"], "a & b <c> 中文");
        assert_eq!(f["attach"], "");
    }

    #[test]
    fn write_then_parse_round_trips() {
        let fields = [
            ("a", "x ]]> y"),
            ("body", "支付 <测试> & \"q\""),
            ("empty", ""),
        ];
        let xml = write(fields);
        let back = ok(&xml);
        for (k, v) in fields {
            assert_eq!(back[k], v);
        }
    }

    #[test]
    fn refuses_xxe_and_entity_expansion() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><attach>&xxe;</attach></xml>"#;
        assert_eq!(parse(xxe.as_bytes()), Err(XmlError::DocType));
        let laughs = r#"<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><xml><a>&lol2;</a></xml>"#;
        assert_eq!(parse(laughs.as_bytes()), Err(XmlError::DocType));
        assert_eq!(
            parse(b"<xml><a>&lol;</a></xml>"),
            Err(XmlError::Entity("lol".into()))
        );
    }

    #[test]
    fn refuses_duplicates_nesting_and_other_shapes() {
        assert_eq!(
            parse(b"<xml><total_fee>1</total_fee><total_fee>100</total_fee></xml>"),
            Err(XmlError::Duplicate("total_fee".into()))
        );
        assert_eq!(
            parse(b"<xml><sign>A</sign><sign/></xml>"),
            Err(XmlError::Duplicate("sign".into()))
        );
        for bad in [
            "<xml><a><b>1</b></a></xml>",
            "<root><a>1</a></root>",
            "<xml><a x=\"1\">1</a></xml>",
            "<xml x=\"1\"><a>1</a></xml>",
            "<xml>text<a>1</a></xml>",
            "<xml><a>1</a></xml><xml><b>2</b></xml>",
            "<xml><a>1</a>",
            "<xml><a>1</b></xml>",
            "<xml><?php x?><a>1</a></xml>",
            "<xml><a-b>1</a-b></xml>",
            "",
            "just text",
        ] {
            assert!(
                matches!(parse(bad.as_bytes()), Err(XmlError::Shape(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_oversized_bodies() {
        let big = format!("<xml><a>{}</a></xml>", "x".repeat(MAX_XML_BYTES));
        assert_eq!(parse(big.as_bytes()), Err(XmlError::TooLarge));
    }
}
