//! The rules of intakes without I/O: the safety clock (due time, state, reminder points) and
//! why a change of an intake is refused.

use chrono::{DateTime, Duration, Utc};
use tsunagu_record::intake::{IntakeStatus, SafetyState};
use tsunagu_record::validate::FieldError;

/// Why a change of an intake was not made, decided on its current row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller may not see the intake: the same answer as for no such intake.
    NotFound,
    /// The caller sees it, but only the receiving organisation may do this.
    NotReceiver,
    /// The intake has moved on since the caller read it.
    Conflict {
        version: i64,
    },
    /// Already attached, sent on or converted.
    NotOpen(IntakeStatus),
    AlreadyConfirmed,
    /// The record to attach to does not exist.
    NoSuchRecord,
    Invalid(Vec<FieldError>),
}

/// 児童相談所運営指針: the child's safety confirmed within 48 hours of the report, unless the
/// organisation's setting says otherwise.
pub const DEFAULT_SAFETY_HOURS: u32 = 48;
/// The most hours a setting may allow (a week): a longer clock is no clock.
pub const MAX_SAFETY_HOURS: u32 = 168;
/// Hours before the deadline at which the organisation is reminded, latest last; the deadline
/// itself is the last point. The first also starts "due soon".
pub const REMINDER_HOURS: [u32; 2] = [12, 3];

/// When the safety of the child of a report received at `received` must be confirmed.
pub fn due_at(received: DateTime<Utc>, hours: u32) -> DateTime<Utc> {
    received + Duration::hours(hours as i64)
}

/// The clock's state at `now`.
pub fn state(
    now: DateTime<Utc>,
    due: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
) -> SafetyState {
    match confirmed_at {
        Some(c) if c > due => SafetyState::ConfirmedLate,
        Some(_) => SafetyState::Confirmed,
        None if now >= due => SafetyState::Overdue,
        None if due - now <= Duration::hours(REMINDER_HOURS[0] as i64) => SafetyState::DueSoon,
        None => SafetyState::Pending,
    }
}

/// The reminder points of a clock, in time order: each reminder before the deadline that
/// falls after the report was received, then the deadline.
pub fn points(received: DateTime<Utc>, due: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out: Vec<DateTime<Utc>> = REMINDER_HOURS
        .iter()
        .map(|h| due - Duration::hours(*h as i64))
        .filter(|p| *p > received)
        .collect();
    out.push(due);
    out
}

/// How many of the clock's points have passed at `now` (0 ..= points().len()): the reminder
/// stage an unconfirmed intake should have been notified of.
pub fn stage(now: DateTime<Utc>, received: DateTime<Utc>, due: DateTime<Utc>) -> usize {
    points(received, due).iter().filter(|p| **p <= now).count()
}

/// Whether the last stage (the deadline) is `stage`.
pub fn is_deadline(stage: usize, received: DateTime<Utc>, due: DateTime<Utc>) -> bool {
    stage == points(received, due).len()
}

/// Whether an intake in `status` may still be changed or linked: only while open.
pub fn is_open(status: IntakeStatus) -> bool {
    status == IntakeStatus::Open
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).unwrap()
    }

    #[test]
    fn the_clock_runs_48_hours_by_default_and_walks_through_its_states() {
        let r = t(5, 18); // a report on a Saturday at 03:00 JST
        let due = due_at(r, DEFAULT_SAFETY_HOURS);
        assert_eq!(due, t(7, 18));
        assert_eq!(state(t(6, 0), due, None), SafetyState::Pending);
        assert_eq!(state(t(7, 6), due, None), SafetyState::DueSoon);
        assert_eq!(state(t(7, 17), due, None), SafetyState::DueSoon);
        assert_eq!(state(t(7, 18), due, None), SafetyState::Overdue);
        assert_eq!(state(t(9, 0), due, Some(t(6, 1))), SafetyState::Confirmed);
        assert_eq!(
            state(t(9, 0), due, Some(t(8, 1))),
            SafetyState::ConfirmedLate
        );
    }

    #[test]
    fn stages_count_the_points_passed_and_end_at_the_deadline() {
        let r = t(5, 18);
        let due = due_at(r, 48);
        assert_eq!(points(r, due), vec![t(7, 6), t(7, 15), t(7, 18)]);
        assert_eq!(stage(t(7, 5), r, due), 0);
        assert_eq!(stage(t(7, 6), r, due), 1);
        assert_eq!(stage(t(7, 16), r, due), 2);
        assert_eq!(stage(t(8, 0), r, due), 3);
        assert!(is_deadline(3, r, due) && !is_deadline(2, r, due));
        // A short clock (a setting of 4 hours) skips the reminder that would come before the
        // report itself.
        let due = due_at(r, 4);
        assert_eq!(points(r, due), vec![t(5, 19), t(5, 22)]);
    }
}
