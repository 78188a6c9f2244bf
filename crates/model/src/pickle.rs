//! Plugin code as Lightning-rod receives it: the protocol-0 pickle of a Python `str`, as text.
//!
//! A board runs `pickle.loads(code.encode())` and writes the result as the plugin's `.py` file.
//! Protocol 0 stores a `str` as `V` + its raw-unicode-escape form + `\np0\n.`. Upstream pickles
//! with Python and then decodes the bytes as UTF-8, which fails for Latin-1 characters (é, ñ):
//! those plugins cannot be created. Here every character outside ASCII is written as a `\u`/`\U`
//! escape, so the text is pure ASCII and any source round-trips.
//!
//! Only this one shape is produced and read: a pickle is code the board executes, and the cloud
//! never needs more.

use std::fmt::Write;

/// The pickle text of `source` (`V...\np0\n.`).
pub fn encode_str(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 8);
    out.push('V');
    for c in source.chars() {
        match c {
            // Characters the opcode's line format cannot carry raw, and the escape character.
            '\\' | '\0' | '\n' | '\r' | '\u{1a}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if c.is_ascii() => out.push(c),
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push_str("\np0\n.");
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    #[error("not a protocol-0 pickle of a string: {0}")]
    Shape(&'static str),
    #[error("bad escape in the pickled string at byte {0}")]
    Escape(usize),
}

/// Reads back a pickle text made by [`encode_str`] or by Python's `pickle.dumps(str, 0)`.
/// `\u`/`\U` escapes are decoded; other characters (Latin-1 bytes that Python left raw) are kept.
pub fn decode_str(text: &str) -> Result<String, PickleError> {
    let body = text
        .strip_prefix('V')
        .ok_or(PickleError::Shape("it does not start with the V opcode"))?;
    let end = body
        .find('\n')
        .ok_or(PickleError::Shape("the string line is not terminated"))?;
    let rest = &body[end + 1..];
    let tail_ok = rest == "."
        || rest
            .strip_prefix('p')
            .and_then(|r| r.split_once('\n'))
            .is_some_and(|(n, after)| n.bytes().all(|b| b.is_ascii_digit()) && after == ".");
    if !tail_ok {
        return Err(PickleError::Shape(
            "expected a memo and STOP after the string",
        ));
    }
    let raw = &body[..end];
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let width = match chars.peek() {
            Some((_, 'u')) => 4,
            Some((_, 'U')) => 8,
            // raw-unicode-escape leaves any other backslash as it is.
            _ => {
                out.push('\\');
                continue;
            }
        };
        chars.next();
        let hex: String = (0..width)
            .filter_map(|_| chars.next().map(|(_, h)| h))
            .collect();
        let code = u32::from_str_radix(&hex, 16).map_err(|_| PickleError::Escape(at))?;
        if hex.len() != width {
            return Err(PickleError::Escape(at));
        }
        out.push(char::from_u32(code).ok_or(PickleError::Escape(at))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCES: &[&str] = &[
        "print('hello')\n",
        "# café, niño: Latin-1\nx = 'é'\n",
        "# 漢字 € and an emoji 😀\n",
        "path = 'C:\\\\temp'\r\nnul = '\0' + '\u{1a}'\n",
        "",
    ];

    #[test]
    fn round_trips_and_stays_ascii() {
        for src in SOURCES {
            let text = encode_str(src);
            assert!(text.is_ascii(), "{text}");
            assert!(text.starts_with('V') && text.ends_with("\np0\n."));
            assert_eq!(decode_str(&text).unwrap(), *src);
        }
    }

    #[test]
    fn reads_what_python_writes() {
        // pickle.dumps("a\\b\nc€", 0).decode()
        assert_eq!(
            decode_str("Va\\u005cb\\u000ac\\u20ac\np0\n.").unwrap(),
            "a\\b\nc€"
        );
        assert_eq!(decode_str("Vx\n.").unwrap(), "x");
    }

    #[test]
    fn refuses_other_shapes() {
        for bad in [
            "",
            "S'x'\np0\n.",
            "Vx",
            "Vx\np0\n",
            "Vx\npZ\n.",
            "V\\u12\np0\n.",
        ] {
            assert!(decode_str(bad).is_err(), "{bad:?}");
        }
    }
}
