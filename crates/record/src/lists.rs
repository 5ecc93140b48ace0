//! The lists of a record edited one entry at a time (`POST /records/{id}/lists/{list}`), and the
//! stamps the server puts on progress log entries (経過: who wrote each entry and when, who
//! corrected it and when). Pure functions: the server applies an operation to the current
//! version inside the write's transaction, so two people appending at once both succeed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

use crate::api::ListOp;
use crate::schema::{
    Attachment, Guardian, HouseholdMember, IntakeReport, ProgressEntry, RecordBody,
};

/// A list of the national format that the owner edits entry by entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ListName {
    /// `core.guardians` (保護者)
    Guardians,
    /// `family.household` (家族の状況)
    Household,
    /// `casework.progress` (経過)
    Progress,
    /// `casework.attachments` (添付ファイルの情報)
    Attachments,
    /// `admin.intake_reports` (通告)
    IntakeReports,
}

impl ListName {
    pub const ALL: [ListName; 5] = [
        ListName::Guardians,
        ListName::Household,
        ListName::Progress,
        ListName::Attachments,
        ListName::IntakeReports,
    ];

    /// The name in the URL.
    pub fn name(self) -> &'static str {
        match self {
            ListName::Guardians => "guardians",
            ListName::Household => "household",
            ListName::Progress => "progress",
            ListName::Attachments => "attachments",
            ListName::IntakeReports => "intake_reports",
        }
    }

    pub fn from_name(s: &str) -> Option<ListName> {
        ListName::ALL.into_iter().find(|l| l.name() == s)
    }

    /// The list's path in the record, as validation names it.
    pub fn path(self) -> &'static str {
        match self {
            ListName::Guardians => "core.guardians",
            ListName::Household => "family.household",
            ListName::Progress => "casework.progress",
            ListName::Attachments => "casework.attachments",
            ListName::IntakeReports => "admin.intake_reports",
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            ListName::Guardians => "保護者",
            ListName::Household => "家族の状況",
            ListName::Progress => "経過",
            ListName::Attachments => "添付ファイル",
            ListName::IntakeReports => "通告",
        }
    }
}

/// An entry of an editable list: how an entry the client saw is recognised in the list as it is
/// now, and what the server keeps of an entry when it is changed or added.
pub trait ListItem: Clone {
    /// Whether `self` (an entry as stored) is the entry the client saw as `was`.
    fn is_seen_as(&self, was: &Self) -> bool;
    /// `self` replaces `old`: keep what the server stamped on `old`.
    fn replacing(&mut self, _old: &Self) {}
    /// `self` is new: nothing the client sent as a stamp is kept.
    fn as_new(&mut self) {}
}

macro_rules! plain_items {
    ($($t:ty),*) => {$(
        impl ListItem for $t {
            fn is_seen_as(&self, was: &Self) -> bool {
                self == was
            }
        }
    )*};
}
plain_items!(Guardian, HouseholdMember, Attachment, IntakeReport);

impl ListItem for ProgressEntry {
    /// The same date and text; and the same stamps where the client sent them back (a client
    /// that never kept them still finds its entry).
    fn is_seen_as(&self, was: &Self) -> bool {
        self.same_content(was)
            && (was.author.is_none() || was.author == self.author)
            && (was.recorded_at.is_none() || was.recorded_at == self.recorded_at)
    }
    fn replacing(&mut self, old: &Self) {
        self.author = old.author.clone();
        self.recorded_at = old.recorded_at;
        self.corrected_at = old.corrected_at;
        self.corrected_by = old.corrected_by.clone();
    }
    fn as_new(&mut self) {
        self.author = None;
        self.recorded_at = None;
        self.corrected_at = None;
        self.corrected_by = None;
    }
}

/// An operation on one list of a record, typed by the list.
#[derive(Debug, Clone, PartialEq)]
pub enum ListChange {
    Guardians(ListOp<Guardian>),
    Household(ListOp<HouseholdMember>),
    Progress(ListOp<ProgressEntry>),
    Attachments(ListOp<Attachment>),
    IntakeReports(ListOp<IntakeReport>),
}

impl ListChange {
    pub fn list(&self) -> ListName {
        match self {
            ListChange::Guardians(_) => ListName::Guardians,
            ListChange::Household(_) => ListName::Household,
            ListChange::Progress(_) => ListName::Progress,
            ListChange::Attachments(_) => ListName::Attachments,
            ListChange::IntakeReports(_) => ListName::IntakeReports,
        }
    }

    /// `add`, `change`, `remove` or `move`.
    pub fn op_name(&self) -> &'static str {
        fn name<T>(op: &ListOp<T>) -> &'static str {
            match op {
                ListOp::Add { .. } => "add",
                ListOp::Change { .. } => "change",
                ListOp::Remove { .. } => "remove",
                ListOp::Move { .. } => "move",
            }
        }
        match self {
            ListChange::Guardians(op) => name(op),
            ListChange::Household(op) => name(op),
            ListChange::Progress(op) => name(op),
            ListChange::Attachments(op) => name(op),
            ListChange::IntakeReports(op) => name(op),
        }
    }

    /// Applies the operation to its list in `body` (see [`apply`]).
    pub fn apply_to(self, body: &mut RecordBody) -> Result<usize, ListOpError> {
        match self {
            ListChange::Guardians(op) => apply(&mut body.core.guardians, op),
            ListChange::Household(op) => apply(&mut body.family.household, op),
            ListChange::Progress(op) => apply(&mut body.casework.progress, op),
            ListChange::Attachments(op) => apply(&mut body.casework.attachments, op),
            ListChange::IntakeReports(op) => apply(&mut body.admin.intake_reports, op),
        }
    }
}

/// Why an operation does not fit the list as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListOpError {
    /// The entry the client saw at `index` is no longer in the list (changed or removed by
    /// someone else since it was read).
    Gone { index: usize },
    /// `to` is not a place in the list as it is now (`len` entries).
    BadTarget { to: usize, len: usize },
}

/// Where the entry the client saw as `was` is now: at `index` if it is still there, otherwise
/// the nearest entry equal to it.
fn locate<T: ListItem>(list: &[T], index: usize, was: &T) -> Result<usize, ListOpError> {
    if list.get(index).is_some_and(|e| e.is_seen_as(was)) {
        return Ok(index);
    }
    (0..list.len())
        .filter(|&i| list[i].is_seen_as(was))
        .min_by_key(|&i| (i.abs_diff(index), i))
        .ok_or(ListOpError::Gone { index })
}

/// Applies `op` to `list` as it is now. Returns the place of the entry added, changed or moved
/// (for a removal, where it was).
pub fn apply<T: ListItem>(list: &mut Vec<T>, op: ListOp<T>) -> Result<usize, ListOpError> {
    match op {
        ListOp::Add { mut item } => {
            item.as_new();
            list.push(item);
            Ok(list.len() - 1)
        }
        ListOp::Change {
            index,
            was,
            mut item,
        } => {
            let at = locate(list, index, &was)?;
            item.replacing(&list[at]);
            list[at] = item;
            Ok(at)
        }
        ListOp::Remove { index, was } => {
            let at = locate(list, index, &was)?;
            list.remove(at);
            Ok(at)
        }
        ListOp::Move { index, was, to } => {
            let at = locate(list, index, &was)?;
            if to >= list.len() {
                return Err(ListOpError::BadTarget {
                    to,
                    len: list.len(),
                });
            }
            let item = list.remove(at);
            list.insert(to, item);
            Ok(to)
        }
    }
}

/// Whether `e` names `b` by the stamps it carries (a client sends back what it read).
fn claims(e: &ProgressEntry, b: &ProgressEntry) -> bool {
    e.recorded_at.is_some() && e.recorded_at == b.recorded_at && e.author == b.author
}

/// Stamps the progress log `entries` about to be saved, against the log of the version it
/// replaces (`base`; none for a new record), by `who` at `now`. Whatever stamps the client sent
/// are only hints to recognise an entry; the values come from `base` or from the server:
///
/// - an entry with the date and text of an entry of `base` is that entry, with its stamps
///   (preferring the same place, then the entry whose stamps the client sent back);
/// - an entry that names an entry of `base` left over by its stamps (`author`, `recorded_at`
///   as read), or one without stamps in the place of a left-over entry that has none (written
///   before entries were stamped), is that entry corrected: its author and time are kept and
///   `corrected_at`/`corrected_by` are `now`/`who`;
/// - any other entry is new: `author` is `who`, `recorded_at` is `now`.
pub fn stamp_progress(
    base: Option<&[ProgressEntry]>,
    entries: &mut [ProgressEntry],
    who: &str,
    now: DateTime<Utc>,
) {
    let base = base.unwrap_or(&[]);
    let mut used = vec![false; base.len()];
    // For each entry: the entry of `base` it is, and whether unchanged.
    let mut origin: Vec<Option<(usize, bool)>> = vec![None; entries.len()];
    for (i, e) in entries.iter().enumerate() {
        let same = |j: usize| !used[j] && base[j].same_content(e);
        let pick = (i < base.len() && same(i))
            .then_some(i)
            .or_else(|| (0..base.len()).find(|&j| same(j) && claims(e, &base[j])))
            .or_else(|| (0..base.len()).find(|&j| same(j)));
        if let Some(j) = pick {
            used[j] = true;
            origin[i] = Some((j, true));
        }
    }
    for (i, e) in entries.iter().enumerate() {
        if origin[i].is_some() {
            continue;
        }
        let pick = if e.recorded_at.is_some() {
            (i < base.len() && !used[i] && claims(e, &base[i]))
                .then_some(i)
                .or_else(|| (0..base.len()).find(|&j| !used[j] && claims(e, &base[j])))
        } else {
            (i < base.len()
                && !used[i]
                && base[i].recorded_at.is_none()
                && base[i].author.is_none())
            .then_some(i)
        };
        if let Some(j) = pick {
            used[j] = true;
            origin[i] = Some((j, false));
        }
    }
    for (e, origin) in entries.iter_mut().zip(origin) {
        match origin {
            Some((j, unchanged)) => {
                let b = &base[j];
                e.author = b.author.clone();
                e.recorded_at = b.recorded_at;
                if unchanged {
                    e.corrected_at = b.corrected_at;
                    e.corrected_by = b.corrected_by.clone();
                } else {
                    e.corrected_at = Some(now);
                    e.corrected_by = Some(who.to_string());
                }
            }
            None => {
                e.author = Some(who.to_string());
                e.recorded_at = Some(now);
                e.corrected_at = None;
                e.corrected_by = None;
            }
        }
    }
}

/// Stamps every server-kept field of `body` about to be saved over `base` (none for a new
/// record): today the progress log's entries (see [`stamp_progress`]).
pub fn stamp(base: Option<&RecordBody>, body: &mut RecordBody, who: &str, now: DateTime<Utc>) {
    stamp_progress(
        base.map(|b| b.casework.progress.as_slice()),
        &mut body.casework.progress,
        who,
        now,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, d).unwrap()
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + s, 0).unwrap()
    }

    fn e(d: u32, text: &str) -> ProgressEntry {
        ProgressEntry::new(day(d), text)
    }

    /// A log saved by `who` at `t` from nothing.
    fn saved(entries: &[ProgressEntry], who: &str, t: i64) -> Vec<ProgressEntry> {
        let mut v = entries.to_vec();
        stamp_progress(None, &mut v, who, at(t));
        v
    }

    #[test]
    fn new_entries_are_stamped_with_the_writer_and_the_time() {
        let v = saved(&[e(1, "初回"), e(2, "訪問")], "職員A", 0);
        for x in &v {
            assert_eq!(x.author.as_deref(), Some("職員A"));
            assert_eq!(x.recorded_at, Some(at(0)));
            assert_eq!((x.corrected_at, x.corrected_by.as_deref()), (None, None));
        }
    }

    #[test]
    fn what_a_client_sends_as_stamps_is_never_kept() {
        let base = saved(&[e(1, "初回")], "職員A", 0);
        // Unchanged entry with forged stamps: the stored ones come back.
        let mut forged = base.clone();
        forged[0].author = Some("別人".into());
        forged[0].recorded_at = Some(at(-999));
        forged[0].corrected_at = Some(at(-5));
        forged[0].corrected_by = Some("別人".into());
        // A new entry claiming to be old and corrected by someone else.
        let mut fake = e(3, "追記");
        fake.author = Some("別人".into());
        fake.recorded_at = Some(at(-999));
        fake.corrected_by = Some("別人".into());
        forged.push(fake);
        stamp_progress(Some(&base), &mut forged, "職員B", at(10));
        assert_eq!(forged[0], base[0]);
        assert_eq!(forged[1].author.as_deref(), Some("職員B"));
        assert_eq!(forged[1].recorded_at, Some(at(10)));
        assert_eq!(forged[1].corrected_by, None);
    }

    #[test]
    fn a_correction_keeps_the_original_author_and_names_the_corrector() {
        let base = saved(&[e(1, "初回"), e(2, "訪問")], "職員A", 0);
        let mut next = base.clone();
        next[1].text = "家庭訪問（母と面接）".into();
        stamp_progress(Some(&base), &mut next, "職員B", at(10));
        assert_eq!(next[0], base[0]);
        assert_eq!(next[1].author.as_deref(), Some("職員A"));
        assert_eq!(next[1].recorded_at, Some(at(0)));
        assert_eq!(next[1].corrected_at, Some(at(10)));
        assert_eq!(next[1].corrected_by.as_deref(), Some("職員B"));
        // A date changed is a correction too; saved again unchanged, the stamps stay.
        let mut again = next.clone();
        again[0].date = day(5);
        stamp_progress(Some(&next), &mut again, "職員C", at(20));
        assert_eq!(again[0].corrected_by.as_deref(), Some("職員C"));
        assert_eq!(again[1], next[1]);
    }

    #[test]
    fn entries_moved_or_removed_keep_their_stamps() {
        let a = saved(&[e(1, "一")], "A", 0);
        let mut b = a.clone();
        b.push(e(2, "二"));
        stamp_progress(Some(&a), &mut b, "B", at(5));
        let mut c = vec![b[1].clone(), e(3, "三"), b[0].clone()];
        // The client lost every stamp: still recognised by date and text.
        for x in &mut c {
            x.as_new();
        }
        stamp_progress(Some(&b), &mut c, "C", at(9));
        assert_eq!(c[0], b[1]);
        assert_eq!(c[2], b[0]);
        assert_eq!(
            (c[1].author.as_deref(), c[1].recorded_at),
            (Some("C"), Some(at(9)))
        );
        let mut d = vec![b[1].clone()];
        stamp_progress(Some(&b), &mut d, "D", at(12));
        assert_eq!(d[0], b[1]);
    }

    #[test]
    fn an_entry_written_before_stamps_is_corrected_in_place() {
        let base = vec![e(1, "移行前の記録")];
        let mut next = vec![e(1, "移行前の記録（訂正）"), e(2, "新規")];
        stamp_progress(Some(&base), &mut next, "職員A", at(1));
        assert_eq!(
            (next[0].author.as_deref(), next[0].recorded_at),
            (None, None)
        );
        assert_eq!(next[0].corrected_by.as_deref(), Some("職員A"));
        assert_eq!(next[1].author.as_deref(), Some("職員A"));
        assert_eq!(next[1].corrected_at, None);
    }

    #[test]
    fn identical_entries_are_told_apart_by_the_stamps_sent_back() {
        let a = saved(&[e(1, "電話")], "A", 0);
        let mut b = a.clone();
        b.push(e(1, "電話"));
        stamp_progress(Some(&a), &mut b, "B", at(5));
        assert_eq!(b[1].author.as_deref(), Some("B"));
        // The second one is corrected: the first keeps its stamps.
        let mut c = b.clone();
        c[1].text = "電話（学校から）".into();
        stamp_progress(Some(&b), &mut c, "C", at(9));
        assert_eq!(c[0], b[0]);
        assert_eq!(c[1].author.as_deref(), Some("B"));
        assert_eq!(c[1].corrected_by.as_deref(), Some("C"));
    }

    #[test]
    fn operations_apply_to_the_list_as_it_is_now() {
        let mut list = vec![e(1, "一"), e(2, "二"), e(3, "三")];
        // Someone removed the first entry since the client read the list: the client's index 2
        // ("三") is now at 1, and is found there.
        list.remove(0);
        let at2 = apply(
            &mut list,
            ListOp::Change {
                index: 2,
                was: e(3, "三"),
                item: e(3, "参"),
            },
        );
        assert_eq!(at2, Ok(1));
        assert_eq!(list[1].text, "参");
        // Gone: 409 for the caller.
        assert_eq!(
            apply(
                &mut list,
                ListOp::Remove {
                    index: 0,
                    was: e(1, "一")
                }
            ),
            Err(ListOpError::Gone { index: 0 })
        );
        assert_eq!(
            apply(
                &mut list,
                ListOp::Move {
                    index: 0,
                    was: e(2, "二"),
                    to: 2
                }
            ),
            Err(ListOpError::BadTarget { to: 2, len: 2 })
        );
        assert_eq!(
            apply(
                &mut list,
                ListOp::Move {
                    index: 0,
                    was: e(2, "二"),
                    to: 1
                }
            ),
            Ok(1)
        );
        let texts: Vec<&str> = list.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(texts, ["参", "二"]);
        assert_eq!(apply(&mut list, ListOp::Add { item: e(4, "四") }), Ok(2));
        assert_eq!(
            apply(
                &mut list,
                ListOp::Remove {
                    index: 7,
                    was: e(2, "二")
                }
            ),
            Ok(1)
        );
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn a_changed_progress_entry_is_stamped_as_a_correction_of_the_one_it_replaced() {
        let base = saved(&[e(1, "一"), e(1, "一")], "A", 0);
        let mut list = base.clone();
        // The client sends `was` and `item` without stamps; the entry keeps its own.
        apply(
            &mut list,
            ListOp::Change {
                index: 1,
                was: e(1, "一"),
                item: e(1, "壱"),
            },
        )
        .unwrap();
        stamp_progress(Some(&base), &mut list, "B", at(3));
        assert_eq!(list[0], base[0]);
        assert_eq!(list[1].author.as_deref(), Some("A"));
        assert_eq!(list[1].corrected_by.as_deref(), Some("B"));
        // `was` with stamps that no entry has is not found.
        let mut was = base[0].clone();
        was.recorded_at = Some(at(-1));
        assert_eq!(
            apply(&mut list, ListOp::Remove { index: 0, was }),
            Err(ListOpError::Gone { index: 0 })
        );
        // An added entry's stamps are the server's.
        let mut forged = e(2, "二");
        forged.author = Some("別人".into());
        forged.recorded_at = Some(at(-7));
        apply(&mut list, ListOp::Add { item: forged }).unwrap();
        stamp_progress(Some(&base), &mut list, "B", at(3));
        assert_eq!(list[2].author.as_deref(), Some("B"));
        assert_eq!(list[2].recorded_at, Some(at(3)));
    }

    /// Generated: any sequence of appends, corrections, moves and removals, each stamped over
    /// the version before, leaves every entry's author and time the ones of the save that first
    /// wrote it, and a correction's stamp exactly where the text changed.
    #[test]
    fn generated_histories_keep_each_entrys_first_author() {
        let mut seed = 0x2545f4914f6cdd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            // (entry, the save that wrote it, corrected by the save?)
            let mut log: Vec<ProgressEntry> = Vec::new();
            let mut truth: Vec<(usize, Option<usize>)> = Vec::new();
            let mut serial = 0;
            for save in 0..12usize {
                let mut list = log.clone();
                let mut t = truth.clone();
                let n = list.len() as u64;
                match next(4) {
                    0 => {
                        serial += 1;
                        apply(
                            &mut list,
                            ListOp::Add {
                                item: e(1, &format!("記録{serial}")),
                            },
                        )
                        .unwrap();
                        t.push((save, None));
                    }
                    1 if n > 0 => {
                        let i = next(n) as usize;
                        serial += 1;
                        let was = list[i].clone();
                        apply(
                            &mut list,
                            ListOp::Change {
                                index: i,
                                was,
                                item: e(2, &format!("訂正{serial}")),
                            },
                        )
                        .unwrap();
                        t[i].1 = Some(save);
                    }
                    2 if n > 1 => {
                        let (i, to) = (next(n) as usize, next(n) as usize);
                        let was = list[i].clone();
                        apply(&mut list, ListOp::Move { index: i, was, to }).unwrap();
                        let x = t.remove(i);
                        t.insert(to, x);
                    }
                    3 if n > 0 => {
                        let i = next(n) as usize;
                        let was = list[i].clone();
                        apply(&mut list, ListOp::Remove { index: i, was }).unwrap();
                        t.remove(i);
                    }
                    _ => continue,
                }
                let who = format!("職員{save}");
                stamp_progress(Some(&log), &mut list, &who, at(save as i64));
                log = list;
                truth = t;
                for (x, (first, corrected)) in log.iter().zip(&truth) {
                    assert_eq!(x.author, Some(format!("職員{first}")));
                    assert_eq!(x.recorded_at, Some(at(*first as i64)));
                    assert_eq!(x.corrected_by, corrected.map(|c| format!("職員{c}")));
                    assert_eq!(x.corrected_at, corrected.map(|c| at(c as i64)));
                }
            }
        }
    }
}
