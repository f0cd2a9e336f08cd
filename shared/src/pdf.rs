//! A plain-text PDF (PDF 1.4): lines of monospaced text on A4 pages, nothing else. Enough for a
//! report's table, with no dependency: the standard Courier font needs no embedding, and the
//! file is a handful of objects and a cross-reference table whose offsets are computed here.

/// Lines that fit one page at [`FONT_SIZE`] with [`LEADING`] between A4's margins.
pub const LINES_PER_PAGE: usize = 64;
/// Characters that fit one line (Courier is 0.6 em wide).
pub const LINE_CHARS: usize = 104;
const FONT_SIZE: f32 = 8.0;
const LEADING: f32 = 11.0;
const PAGE: (u32, u32) = (595, 842); // A4 in points
const MARGIN: u32 = 40;

/// `lines` as a PDF, [`LINES_PER_PAGE`] to a page (at least one page). Characters outside
/// printable ASCII become `?`; a line longer than [`LINE_CHARS`] is cut.
pub fn text_document(title: &str, lines: &[String]) -> Vec<u8> {
    let pages: Vec<&[String]> = if lines.is_empty() {
        vec![&[]]
    } else {
        lines.chunks(LINES_PER_PAGE).collect()
    };
    // Objects: 1 catalog, 2 page tree, 3 font, 4 info, then a page and its content per page.
    let page_id = |i: usize| 5 + 2 * i;
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            (0..pages.len())
                .map(|i| format!("{} 0 R", page_id(i)))
                .collect::<Vec<_>>()
                .join(" "),
            pages.len()
        )
        .into_bytes(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>".to_vec(),
        format!("<< /Title ({}) /Producer (serverless-jobs) >>", escape(title)).into_bytes(),
    ];
    for (i, page) in pages.iter().enumerate() {
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {} {}] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                PAGE.0,
                PAGE.1,
                page_id(i) + 1
            )
            .into_bytes(),
        );
        let mut content = format!(
            "BT\n/F1 {FONT_SIZE} Tf\n{LEADING} TL\n{MARGIN} {} Td\n",
            PAGE.1 - MARGIN
        );
        for line in page.iter() {
            content.push_str(&format!("({}) '\n", escape(line)));
        }
        content.push_str("ET\n");
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend_from_slice(content.as_bytes());
        stream.extend_from_slice(b"endstream");
        objects.push(stream);
    }

    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        // Each entry is exactly 20 bytes, its end of line included.
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 4 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A PDF literal string's text: `\`, `(` and `)` escaped, printable ASCII only, cut to a line.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().take(LINE_CHARS) {
        match c {
            '\\' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cross-reference table as written: each object's offset. (Bytes, not text: the
    /// header's binary comment is not UTF-8.)
    fn xref(pdf: &[u8]) -> Vec<usize> {
        let tail = &pdf[pdf.len() - 40..];
        let tail =
            std::str::from_utf8(&tail[tail.windows(10).position(|w| w == b"startxref\n").unwrap() + 10..]).unwrap();
        let start: usize = tail.lines().next().unwrap().parse().unwrap();
        let table = std::str::from_utf8(&pdf[start..]).unwrap();
        assert!(table.starts_with("xref\n"), "startxref points at the table");
        table
            .lines()
            .skip(3) // "xref", "0 N", the free entry
            .take_while(|l| l.ends_with(" n "))
            .map(|l| l[..10].parse().unwrap())
            .collect()
    }

    #[test]
    fn every_offset_points_at_its_object_and_pages_hold_64_lines() {
        let lines: Vec<String> = (0..130).map(|i| format!("line {i}")).collect();
        let pdf = text_document("weekly (jobs)", &lines);
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        let offsets = xref(&pdf);
        assert_eq!(offsets.len(), 4 + 2 * 3, "3 pages: 130 lines at 64 a page");
        for (i, at) in offsets.iter().enumerate() {
            let head = format!("{} 0 obj\n", i + 1);
            assert_eq!(&pdf[*at..at + head.len()], head.as_bytes(), "object {}", i + 1);
        }
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Count 3"));
        assert!(text.contains("(line 129) '"));
        assert!(text.contains("/Title (weekly \\(jobs\\))"));
    }

    #[test]
    fn a_streams_length_is_its_bytes() {
        let pdf = text_document("t", &["a\\b".into(), "ünï".into()]);
        let text = String::from_utf8_lossy(&pdf);
        let (head, rest) = text.split_once("<< /Length ").unwrap();
        assert!(head.contains("5 0 obj"));
        let length: usize = rest.split_once(' ').unwrap().0.parse().unwrap();
        let body = rest.split_once("stream\n").unwrap().1;
        assert_eq!(&body[length..length + 9], "endstream");
        assert!(body[..length].contains("(a\\\\b) '"), "{body}");
        assert!(body[..length].contains("(?n?) '"), "{body}");
    }

    #[test]
    fn no_lines_is_one_empty_page() {
        let pdf = text_document("t", &[]);
        assert_eq!(xref(&pdf).len(), 6);
        assert!(String::from_utf8_lossy(&pdf).contains("/Count 1"));
    }
}
