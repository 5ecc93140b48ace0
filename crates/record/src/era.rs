//! Dates as people type them in Japan: ISO (2015-04-01, 2015/4/1) and the Japanese era
//! (令和7年4月1日, R7.4.1, H27.4.1, 平成元年1月8日).

use chrono::{Datelike, NaiveDate};

struct Era {
    kanji: &'static str,
    letter: char,
    start: (i32, u32, u32),
}

const ERAS: &[Era] = &[
    Era {
        kanji: "令和",
        letter: 'R',
        start: (2019, 5, 1),
    },
    Era {
        kanji: "平成",
        letter: 'H',
        start: (1989, 1, 8),
    },
    Era {
        kanji: "昭和",
        letter: 'S',
        start: (1926, 12, 25),
    },
    Era {
        kanji: "大正",
        letter: 'T',
        start: (1912, 7, 30),
    },
];

/// What a typed date names: a day, or only a year (for searches by year of birth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateSpec {
    Day(NaiveDate),
    Year(i32),
    YearMonth(i32, u32),
}

/// Parses a date in any accepted form; the error is a Japanese message.
pub fn parse_date(input: &str) -> Result<NaiveDate, String> {
    match parse_date_spec(input)? {
        DateSpec::Day(d) => Ok(d),
        _ => Err(format!(
            "「{input}」は日付まで入力してください（例: 令和7年4月1日, 2025-04-01）"
        )),
    }
}

/// Parses a day, a year-month or a year, ISO or Japanese era.
pub fn parse_date_spec(input: &str) -> Result<DateSpec, String> {
    let s: String = crate::normalize::search_key(input);
    let bad =
        || format!("「{input}」は日付として読めません（例: 令和7年4月1日, R7.4.1, 2025-04-01）");
    if s.is_empty() {
        return Err("日付が入力されていません".to_string());
    }
    // Era prefix, if any.
    let mut era: Option<&Era> = None;
    let mut rest = s.as_str();
    for e in ERAS {
        if let Some(r) = rest.strip_prefix(e.kanji) {
            era = Some(e);
            rest = r;
            break;
        }
        let upper = rest.chars().next().map(|c| c.to_ascii_uppercase());
        if upper == Some(e.letter) {
            era = Some(e);
            rest = &rest[1..];
            break;
        }
    }
    // Split the numbers on any separator.
    let rest = rest.replacen("元", "1", 1);
    let parts: Vec<&str> = rest
        .split(['年', '月', '日', '.', '/', '-'])
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() || parts.len() > 3 {
        return Err(bad());
    }
    let nums: Vec<u32> = parts
        .iter()
        .map(|p| p.parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let year = match era {
        Some(e) => {
            if nums[0] == 0 {
                return Err(bad());
            }
            e.start.0 + nums[0] as i32 - 1
        }
        None if nums[0] >= 1000 => nums[0] as i32,
        None => return Err(bad()),
    };
    let spec = match nums.len() {
        1 => DateSpec::Year(year),
        2 => {
            if !(1..=12).contains(&nums[1]) {
                return Err(bad());
            }
            DateSpec::YearMonth(year, nums[1])
        }
        _ => DateSpec::Day(NaiveDate::from_ymd_opt(year, nums[1], nums[2]).ok_or_else(bad)?),
    };
    if let (Some(e), DateSpec::Day(d)) = (era, spec) {
        let start = NaiveDate::from_ymd_opt(e.start.0, e.start.1, e.start.2).expect("era start");
        if d < start {
            return Err(format!(
                "「{input}」は{}の始まり（{}）より前です",
                e.kanji, start
            ));
        }
    }
    Ok(spec)
}

/// A date in the current era, e.g. 令和7年4月1日 (元年 for the first year).
pub fn format_era(d: NaiveDate) -> String {
    for e in ERAS {
        let start = NaiveDate::from_ymd_opt(e.start.0, e.start.1, e.start.2).expect("era start");
        if d >= start {
            let y = d.year() - e.start.0 + 1;
            let ys = if y == 1 {
                "元".to_string()
            } else {
                y.to_string()
            };
            return format!("{}{}年{}月{}日", e.kanji, ys, d.month(), d.day());
        }
    }
    d.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn era_and_iso_forms() {
        assert_eq!(parse_date("令和7年4月1日"), Ok(d(2025, 4, 1)));
        assert_eq!(parse_date("R7.4.1"), Ok(d(2025, 4, 1)));
        assert_eq!(parse_date("r7/4/1"), Ok(d(2025, 4, 1)));
        assert_eq!(parse_date("H27.4.1"), Ok(d(2015, 4, 1)));
        assert_eq!(parse_date("平成元年1月8日"), Ok(d(1989, 1, 8)));
        assert_eq!(parse_date("2015-04-01"), Ok(d(2015, 4, 1)));
        assert_eq!(parse_date("２０１５／４／１"), Ok(d(2015, 4, 1)));
        assert_eq!(parse_date_spec("平成27年"), Ok(DateSpec::Year(2015)));
        assert_eq!(parse_date_spec("2015"), Ok(DateSpec::Year(2015)));
        assert_eq!(parse_date_spec("R1.5"), Ok(DateSpec::YearMonth(2019, 5)));
    }

    #[test]
    fn impossible_dates_are_refused_in_japanese() {
        for bad in [
            "",
            "R7.2.30",
            "平成元年1月7日",
            "15.4.1",
            "R0.1.1",
            "あした",
            "2015-13-01",
        ] {
            let err = parse_date(bad).unwrap_err();
            assert!(err.contains('日') || err.contains('前'), "{bad}: {err}");
        }
    }

    #[test]
    fn formats_in_era() {
        assert_eq!(format_era(d(2025, 4, 1)), "令和7年4月1日");
        assert_eq!(format_era(d(2019, 5, 1)), "令和元年5月1日");
        assert_eq!(format_era(d(2019, 4, 30)), "平成31年4月30日");
    }
}
