//! nsDS5ReplicaUpdateSchedule, as 389-ds reads it: each value is a window
//! `HHMM-HHMM [DAYS]` (days as digits, 0 = Sunday, as in cron; all days
//! when absent) or `*` (always). Incremental updates are sent only inside a
//! window; with no value, always. A window does not cross midnight (389-ds
//! neither): write two. The time is an argument, so this stays pure.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nsDS5ReplicaUpdateSchedule '{value}': {reason}")]
pub struct ScheduleError {
    pub value: String,
    pub reason: String,
}

const DAY: u32 = 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    /// Seconds after midnight, both ends included.
    start: u32,
    end: u32,
    /// Bit 0 = Sunday.
    days: u8,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Empty: always.
    windows: Vec<Window>,
}

fn hhmm(s: &str) -> Option<u32> {
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: u32 = s.get(..2)?.parse().ok()?;
    let m: u32 = s.get(2..)?.parse().ok()?;
    (h <= 23 && m <= 59).then_some((h * 60 + m) * 60)
}

fn parse_window(value: &str) -> Result<Window, ScheduleError> {
    let err = |reason: &str| ScheduleError {
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let text = value.trim();
    if text == "*" {
        return Ok(Window {
            start: 0,
            end: DAY,
            days: 0x7f,
        });
    }
    let (range, days) = match text.split_once(' ') {
        Some((r, d)) => (r, Some(d.trim())),
        None => (text, None),
    };
    let (from, to) = range
        .split_once('-')
        .ok_or_else(|| err("expected HHMM-HHMM followed by the days (0 = Sunday ... 6), or *"))?;
    let start = hhmm(from).ok_or_else(|| err("the start is not a time HHMM (0000 to 2359)"))?;
    let end = hhmm(to).ok_or_else(|| err("the end is not a time HHMM (0000 to 2359)"))?;
    if start > end {
        return Err(err(
            "the window ends before it starts: a window cannot cross midnight, give two values",
        ));
    }
    let days = match days {
        None => 0x7f,
        Some(d) => {
            let mut bits = 0u8;
            for c in d.chars() {
                match c.to_digit(10) {
                    Some(n) if n <= 6 => bits |= 1 << n,
                    _ => return Err(err("days are digits 0 (Sunday) to 6 (Saturday)")),
                }
            }
            if bits == 0 {
                return Err(err("no day given after the times"));
            }
            bits
        }
    };
    Ok(Window { start, end, days })
}

impl Schedule {
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Schedule, ScheduleError> {
        let windows = values
            .into_iter()
            .map(parse_window)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Schedule { windows })
    }

    pub fn is_always(&self) -> bool {
        self.windows.is_empty()
    }

    /// Whether updates may be sent at `unix` seconds (UTC).
    pub fn allows(&self, unix: u64) -> bool {
        self.windows.is_empty() || self.windows.iter().any(|w| in_window(w, unix))
    }

    /// Seconds from `unix` until a window opens: 0 when one is open, None
    /// when there is none in the coming week (never, then).
    pub fn wait_secs(&self, unix: u64) -> Option<u64> {
        if self.allows(unix) {
            return Some(0);
        }
        // Windows start on a minute: look minute by minute over a week.
        let next_minute = unix - unix % 60 + 60;
        (0..7 * 24 * 60)
            .map(|i| next_minute + i * 60)
            .find(|t| self.allows(*t))
            .map(|t| t - unix)
    }
}

fn in_window(w: &Window, unix: u64) -> bool {
    // 1970-01-01 was a Thursday (day 4).
    let weekday = ((unix / u64::from(DAY) + 4) % 7) as u8;
    let secs = (unix % u64::from(DAY)) as u32;
    w.days & (1 << weekday) != 0 && secs >= w.start && secs <= w.end
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-07 was a Sunday; `day` 0..6 from there, at hh:mm:ss UTC.
    fn at(day: u64, h: u64, m: u64, s: u64) -> u64 {
        1_704_585_600 + day * 86_400 + h * 3600 + m * 60 + s
    }

    #[test]
    fn windows_as_389_ds_reads_them() {
        let s = Schedule::parse(["0000-0500 1"]).unwrap();
        assert!(s.allows(at(1, 0, 0, 0)));
        assert!(s.allows(at(1, 5, 0, 0)), "the end minute is included");
        assert!(!s.allows(at(1, 5, 0, 1)));
        assert!(!s.allows(at(2, 1, 0, 0)), "Tuesday is not day 1");
        let s = Schedule::parse(["0800-1700 12345", "2200-2359 6"]).unwrap();
        assert!(s.allows(at(3, 12, 0, 0)));
        assert!(!s.allows(at(0, 12, 0, 0)));
        assert!(s.allows(at(6, 23, 0, 0)));
        assert!(Schedule::parse(["*"]).unwrap().allows(at(0, 3, 0, 0)));
        assert!(Schedule::parse(["1000-1100"])
            .unwrap()
            .allows(at(4, 10, 30, 0)));
        let always = Schedule::parse(std::iter::empty()).unwrap();
        assert!(always.is_always() && always.allows(0));
    }

    #[test]
    fn waits_until_the_next_window() {
        let s = Schedule::parse(["0000-0500 1"]).unwrap();
        assert_eq!(s.wait_secs(at(1, 4, 0, 0)), Some(0));
        assert_eq!(s.wait_secs(at(0, 23, 59, 30)), Some(30));
        assert_eq!(s.wait_secs(at(1, 5, 0, 1)), Some(7 * 86_400 - 5 * 3600 - 1));
    }

    #[test]
    fn bad_values_say_why() {
        for (bad, says) in [
            ("0500-0000", "cannot cross midnight"),
            ("2500-2600", "the start is not a time"),
            ("0000-0560", "the end is not a time"),
            ("0000-0500 7", "digits 0 (Sunday) to 6"),
            ("0000-0500 1,2", "digits 0 (Sunday) to 6"),
            ("always", "expected HHMM-HHMM"),
        ] {
            let e = Schedule::parse([bad]).unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains("nsDS5ReplicaUpdateSchedule"),
                "{bad}: {e}"
            );
        }
    }
}
