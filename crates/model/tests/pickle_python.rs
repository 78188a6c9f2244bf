//! Plugin pickles against the real thing: Python's `pickle`, as a board runs it
//! (`pickle.loads(code.encode())`), and Python's own protocol-0 output read back.

use std::io::Write;
use std::process::{Command, Stdio};

use s4t_model::pickle::{decode_str, encode_str};

fn python(script: &str, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 on PATH");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed");
    out.stdout
}

const SOURCES: &[&str] = &[
    "from iotronic_lightningrod.modules.plugins import Plugin\nprint('ascii')\n",
    "# Latin-1: café, niño, ß\nx = 'é'\n",
    "# beyond Latin-1: 漢字 € 😀\n",
    "s = 'back\\\\slash'\r\nz = '\\0' '\u{1a}'\n",
];

#[test]
fn python_unpickles_what_we_send_as_lightning_rod_does() {
    for src in SOURCES {
        let text = encode_str(src);
        let got = python(
            "import pickle,sys; sys.stdout.buffer.write(pickle.loads(sys.stdin.read().encode()).encode('utf-8'))",
            text.as_bytes(),
        );
        assert_eq!(String::from_utf8(got).unwrap(), *src);
    }
}

#[test]
fn we_read_what_python_pickles() {
    for src in SOURCES {
        // Python leaves Latin-1 characters raw; read its bytes as Latin-1 text.
        let bytes = python(
            "import pickle,sys; sys.stdout.buffer.write(pickle.dumps(sys.stdin.buffer.read().decode('utf-8'), 0))",
            src.as_bytes(),
        );
        let text: String = bytes.iter().map(|&b| b as char).collect();
        assert_eq!(decode_str(&text).unwrap(), *src);
    }
}
