//! Wall-clock helpers: seconds since the epoch and GeneralizedTime text.

pub(crate) fn now_secs() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().min(u64::from(u32::MAX)) as u32)
        .unwrap_or(0)
}

/// `YYYYMMDDHHMMSSZ` for seconds since the epoch (UTC).
pub fn generalized_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = crate::model::civil::civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_known_instants() {
        assert_eq!(super::generalized_time(0), "19700101000000Z");
        assert_eq!(super::generalized_time(951_782_400), "20000229000000Z");
        assert_eq!(super::generalized_time(1_795_311_845), "20261122014405Z");
    }
}
