//! The `Range` header of a guest's download (RFC 9110 §14): one byte range, so a phone resumes where
//! it stopped. Several ranges are answered whole, as the RFC allows.

use std::ops::Range;

/// What a `Range` header asks of a file of `size` bytes: `None` for the whole file (no header, another
/// unit, several ranges, one that does not parse, or an empty file), `Some(Err(()))` for a range that starts past the
/// end (416), else the bytes.
pub(crate) fn requested(header: Option<&str>, size: u64) -> Option<Result<Range<u64>, ()>> {
    let spec = header?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = (start.trim(), end.trim());
    let number = |s: &str| s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse::<u64>().ok()).flatten();
    match (start.is_empty(), end.is_empty()) {
        // The last `end` bytes.
        (true, false) => {
            let last = number(end)?;
            match last {
                0 => Some(Err(())),
                last => Some(Ok(size.saturating_sub(last)..size)),
            }
        }
        (false, _) => {
            let first = number(start)?;
            let end = match end.is_empty() {
                true => size,
                false => number(end)?.checked_add(1)?.min(size),
            };
            if end <= first {
                return if first >= size { Some(Err(())) } else { None };
            }
            Some(Ok(first..end))
        }
        (true, true) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_as_browsers_send_them() {
        assert_eq!(requested(None, 100), None);
        assert_eq!(requested(Some("bytes=0-"), 100), Some(Ok(0..100)));
        assert_eq!(requested(Some("bytes=10-19"), 100), Some(Ok(10..20)));
        assert_eq!(requested(Some("bytes=90-200"), 100), Some(Ok(90..100)));
        assert_eq!(requested(Some("bytes=-10"), 100), Some(Ok(90..100)));
        assert_eq!(requested(Some("bytes=-1000"), 100), Some(Ok(0..100)));
        assert_eq!(requested(Some("bytes=100-"), 100), Some(Err(())));
        assert_eq!(requested(Some("bytes=-0"), 100), Some(Err(())));
        assert_eq!(requested(Some("bytes=0-1,5-6"), 100), None);
        assert_eq!(requested(Some("items=0-1"), 100), None);
        assert_eq!(requested(Some("bytes=5-2"), 100), None);
        assert_eq!(requested(Some("bytes=99999999999999999999999-"), 100), None);
    }

    proptest! {
        /// Whatever the header, an answered range lies within the file and is not empty.
        #[test]
        fn any_header_gives_a_range_within_the_file(header in ".{0,40}", size in 0u64..1 << 40) {
            if let Some(Ok(range)) = requested(Some(&header), size) {
                prop_assert!(range.start < range.end);
                prop_assert!(range.end <= size);
            }
        }

        #[test]
        fn well_formed_ranges_are_read(a in 0u64..1 << 40, len in 0u64..1 << 20, size in 1u64..1 << 41) {
            let header = format!("bytes={a}-{}", a + len);
            match requested(Some(&header), size) {
                Some(Ok(range)) => prop_assert_eq!(range, a..(a + len + 1).min(size)),
                Some(Err(())) => prop_assert!(a >= size),
                None => prop_assert!(false, "a single well-formed range is read"),
            }
        }
    }
}
