//! Field-level differences between two versions of a record: which fields changed, from what to
//! what. Works on the JSON form, so a field is named by the path validation and the merge use
//! (`core.child_name.family`, `core.guardians[1].name`, `casework.progress[3].text`).
//!
//! - Objects are compared key by key (in key order), down to the values that differ.
//! - Lists are compared after their common beginning and end: the entries in between are
//!   compared place by place, and the entries one version has beyond the other are added or
//!   removed entries, each one change holding the whole entry.
//! - `before` is the value at `field` in the earlier version, `after` the value there in the
//!   later one; a value that is absent or `null` is `None`. An added entry has only `after`, a
//!   removed one only `before` (named by its place in the earlier version).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

use crate::schema::RecordBody;

/// One field that changed between two versions. Either shown, with `before` and/or `after`, or
/// `withheld: true` with neither: the field changed, and the viewer may not see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FieldChange {
    /// Path of the field, e.g. `casework.progress[3].text`; for a withheld change, the path of
    /// what is withheld (`casework.findings`, `family`), never deeper.
    pub field: String,
    /// The value before; absent when there was none (an entry added, a value set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The value after; absent when there is none (an entry removed, a value cleared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// The field changed but is withheld from the viewer: no value is given.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withheld: bool,
}

impl FieldChange {
    pub fn shown(field: impl Into<String>, before: Option<Value>, after: Option<Value>) -> Self {
        FieldChange {
            field: field.into(),
            before,
            after,
            withheld: false,
        }
    }

    pub fn withheld(field: impl Into<String>) -> Self {
        FieldChange {
            field: field.into(),
            before: None,
            after: None,
            withheld: true,
        }
    }
}

/// The changes from `before` to `after`.
pub fn diff(before: &RecordBody, after: &RecordBody) -> Vec<FieldChange> {
    let to_value = |b: &RecordBody| serde_json::to_value(b).expect("a body is plain data");
    diff_values(&to_value(before), &to_value(after))
}

/// The changes from `before` to `after`, any JSON.
pub fn diff_values(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(&mut String::new(), Some(before), Some(after), &mut out);
    out
}

fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn walk(
    path: &mut String,
    before: Option<&Value>,
    after: Option<&Value>,
    out: &mut Vec<FieldChange>,
) {
    let (b, a) = (present(before), present(after));
    if b == a {
        return;
    }
    match (b, a) {
        (Some(Value::Object(bo)), Some(Value::Object(ao))) => {
            let mut keys: Vec<&String> = bo.keys().chain(ao.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                walk(path, bo.get(k), ao.get(k), out);
                path.truncate(len);
            }
        }
        (Some(Value::Array(ba)), Some(Value::Array(aa))) => list(path, ba, aa, out),
        _ => out.push(FieldChange::shown(path.clone(), b.cloned(), a.cloned())),
    }
}

fn list(path: &mut String, b: &[Value], a: &[Value], out: &mut Vec<FieldChange>) {
    let head = b.iter().zip(a).take_while(|(x, y)| x == y).count();
    let room = b.len().min(a.len()) - head;
    let tail = b
        .iter()
        .rev()
        .zip(a.iter().rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    let (bm, am) = (&b[head..b.len() - tail], &a[head..a.len() - tail]);
    let at = |path: &String, i: usize| format!("{path}[{}]", head + i);
    for i in 0..bm.len().max(am.len()) {
        let mut p = at(path, i);
        match (bm.get(i), am.get(i)) {
            (Some(x), Some(y)) => walk(&mut p, Some(x), Some(y), out),
            (x, y) => out.push(FieldChange::shown(p, x.cloned(), y.cloned())),
        }
    }
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// The steps of a path such as `core.guardians[1].name`; `None` for one that is not of that
/// form.
pub fn steps(field: &str) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    for part in field.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if key.is_empty() {
            return None;
        }
        out.push(Step::Key(key.to_string()));
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            out.push(Step::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
        }
    }
    Some(out)
}

/// The value at `field` in `v`, if any (`null` counts as none).
pub fn resolve<'a>(v: &'a Value, field: &str) -> Option<&'a Value> {
    let mut cur = v;
    for s in steps(field)? {
        cur = match s {
            Step::Key(k) => cur.get(k.as_str())?,
            Step::Index(i) => cur.get(i)?,
        };
    }
    present(Some(cur))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{Relationship, RiskLevel, Sex};
    use crate::schema::*;
    use chrono::NaiveDate;
    use serde_json::json;

    fn fields(c: &[FieldChange]) -> Vec<&str> {
        c.iter().map(|c| c.field.as_str()).collect()
    }

    #[test]
    fn fields_are_named_by_their_path_with_both_values() {
        let mut a = RecordBody::default();
        a.core.child_name.family = "試験".into();
        a.core.guardians = vec![Guardian::default(), Guardian::default()];
        a.casework.progress = vec![ProgressEntry::new(
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            "初回",
        )];
        let mut b = a.clone();
        b.core.child_name.family = "架空".into();
        b.core.guardians[1].name.given = "太郎".into();
        b.casework.progress[0].text = "初回（訂正）".into();
        b.core.sex = Some(Sex::Female);
        let c = diff(&a, &b);
        assert_eq!(
            fields(&c),
            [
                "casework.progress[0].text",
                "core.child_name.family",
                "core.guardians[1].name.given",
                "core.sex"
            ]
        );
        assert_eq!(c[1].before, Some(json!("試験")));
        assert_eq!(c[1].after, Some(json!("架空")));
        assert_eq!(
            (c[3].before.clone(), c[3].after.clone()),
            (None, Some(json!(2)))
        );
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn an_appended_entry_is_one_change_and_a_removed_one_is_named_where_it_was() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let mut a = RecordBody::default();
        a.casework.progress = ["一", "二", "三"]
            .iter()
            .map(|t| ProgressEntry::new(day, *t))
            .collect();
        let mut b = a.clone();
        b.casework.progress.push(ProgressEntry::new(day, "四"));
        let c = diff(&a, &b);
        assert_eq!(fields(&c), ["casework.progress[3]"]);
        assert_eq!(c[0].before, None);
        assert_eq!(c[0].after.as_ref().unwrap()["text"], "四");
        // Removing the middle entry: one change, at its old place; the ones after it moved up
        // and did not change.
        let mut b = a.clone();
        b.casework.progress.remove(1);
        let c = diff(&a, &b);
        assert_eq!(fields(&c), ["casework.progress[1]"]);
        assert_eq!(c[0].before.as_ref().unwrap()["text"], "二");
        assert_eq!(c[0].after, None);
        // Removed and appended at once: the places in between compared one by one.
        b.casework.progress.push(ProgressEntry::new(day, "四"));
        let c = diff(&a, &b);
        assert_eq!(
            fields(&c),
            ["casework.progress[1].text", "casework.progress[2].text"]
        );
    }

    #[test]
    fn an_optional_group_set_or_cleared_is_one_change() {
        let a = RecordBody::default();
        let mut b = a.clone();
        b.casework.risk = Some(Risk {
            level: RiskLevel::High,
            urgent: true,
        });
        let c = diff(&a, &b);
        assert_eq!(fields(&c), ["casework.risk"]);
        assert_eq!(c[0].after, Some(json!({ "level": "high", "urgent": true })));
        let c = diff(&b, &a);
        assert_eq!((c[0].before.is_some(), c[0].after.is_none()), (true, true));
    }

    #[test]
    fn paths_parse_and_resolve() {
        assert_eq!(
            steps("core.guardians[1].name"),
            Some(vec![
                Step::Key("core".into()),
                Step::Key("guardians".into()),
                Step::Index(1),
                Step::Key("name".into())
            ])
        );
        assert_eq!(steps("a[x]"), None);
        assert_eq!(steps("a..b"), None);
        let v = json!({ "a": [{ "b": 1 }, null] });
        assert_eq!(resolve(&v, "a[0].b"), Some(&json!(1)));
        assert_eq!(resolve(&v, "a[1]"), None);
        assert_eq!(resolve(&v, "a[2]"), None);
    }

    /// A seeded generator of bodies whose values are drawn from small pools, so that two bodies
    /// share entries and values as versions of one record do.
    struct Gen(u64);

    impl Gen {
        fn n(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
        fn coin(&mut self) -> bool {
            self.n(2) == 0
        }
        fn text(&mut self) -> String {
            ["", "一", "二", "三", "改行\nあり"][self.n(5) as usize].to_string()
        }
        fn day(&mut self) -> NaiveDate {
            NaiveDate::from_ymd_opt(2026, 1 + self.n(3) as u32, 1 + self.n(3) as u32).unwrap()
        }
        fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
            if self.coin() {
                Some(f(self))
            } else {
                None
            }
        }
        fn name(&mut self) -> PersonName {
            PersonName {
                family: self.text(),
                given: self.text(),
                family_kana: self.opt(|g| g.text()),
                given_kana: None,
            }
        }
        fn guardian(&mut self) -> Guardian {
            Guardian {
                name: self.name(),
                relationship: self
                    .opt(|g| [Relationship::Mother, Relationship::Father][g.n(2) as usize]),
            }
        }
        fn member(&mut self) -> HouseholdMember {
            HouseholdMember {
                name: self.text(),
                relationship: None,
                birth_year: self.opt(|g| 1980 + g.n(3) as i32),
                cohabiting: self.coin(),
                note: self.text(),
            }
        }
        fn entry(&mut self) -> ProgressEntry {
            let mut e = ProgressEntry::new(self.day(), self.text());
            if self.coin() {
                e.author = Some(self.text());
                e.recorded_at = chrono::DateTime::from_timestamp(self.n(3) as i64, 0);
            }
            e
        }
        fn attachment(&mut self) -> Attachment {
            Attachment {
                file_name: self.text(),
                media_type: "image/png".into(),
                size: self.n(3),
                sha256: "0".repeat(64),
            }
        }
        fn list<T>(&mut self, f: impl Fn(&mut Self) -> T) -> Vec<T> {
            (0..self.n(5)).map(|_| f(self)).collect()
        }
        fn body(&mut self) -> RecordBody {
            let mut b = RecordBody::default();
            b.core.child_name = self.name();
            b.core.sex = self.opt(|g| [Sex::Male, Sex::Female][g.n(2) as usize]);
            b.core.birth_date = self.opt(|g| BirthDate {
                date: g.day(),
                estimated: g.coin(),
            });
            b.core.address.street = self.text();
            b.core.guardians = self.list(Self::guardian);
            b.family.household = self.list(Self::member);
            b.family.upbringing = self.text();
            b.casework.findings = self.text();
            b.casework.progress = self.list(Self::entry);
            b.casework.attachments = self.list(Self::attachment);
            b.casework.risk = self.opt(|g| Risk {
                level: RiskLevel::Low,
                urgent: g.coin(),
            });
            b.admin.case_number = self.text();
            b.admin.intake_reports = self.list(|g| IntakeReport {
                received_on: g.day(),
                source: g.text(),
                summary: g.text(),
            });
            b.admin.serious_case = self.coin();
            b
        }
        /// `b` changed as an editor would: a few fields and list entries changed, added,
        /// removed or swapped.
        fn edit(&mut self, b: &RecordBody) -> RecordBody {
            let mut b = b.clone();
            for _ in 0..self.n(4) {
                match self.n(9) {
                    0 => b.core.child_name = self.name(),
                    1 => {
                        b.core.birth_date = self.opt(|g| BirthDate {
                            date: g.day(),
                            estimated: false,
                        })
                    }
                    2 => b.family.upbringing = self.text(),
                    3 => {
                        let e = self.entry();
                        let at = self.n(b.casework.progress.len() as u64 + 1) as usize;
                        b.casework.progress.insert(at, e);
                    }
                    4 if !b.casework.progress.is_empty() => {
                        let at = self.n(b.casework.progress.len() as u64) as usize;
                        if self.coin() {
                            b.casework.progress.remove(at);
                        } else {
                            b.casework.progress[at].text = self.text();
                        }
                    }
                    5 if b.core.guardians.len() > 1 => b.core.guardians.swap(0, 1),
                    6 => b.core.guardians.push(self.guardian()),
                    7 if !b.family.household.is_empty() => {
                        b.family.household.remove(0);
                    }
                    _ => {
                        b.casework.risk = self.opt(|g| Risk {
                            level: RiskLevel::High,
                            urgent: g.coin(),
                        })
                    }
                }
            }
            b
        }
    }

    /// Applies `changes` to `v`: values set, entries added in order, entries removed last to
    /// first (each change's place is in the earlier version for a removal, in the later one
    /// otherwise).
    fn apply(v: &mut Value, changes: &[FieldChange]) {
        fn parent<'a>(v: &'a mut Value, s: &[Step]) -> &'a mut Value {
            s.iter().fold(v, |cur, s| match s {
                Step::Key(k) => &mut cur[k.as_str()],
                Step::Index(i) => &mut cur[*i],
            })
        }
        let put = |v: &mut Value, c: &FieldChange, insert: bool| {
            let s = steps(&c.field).unwrap();
            let (last, up) = s.split_last().unwrap();
            let p = parent(v, up);
            let val = c.after.clone().unwrap_or(Value::Null);
            match (last, p) {
                (Step::Index(i), Value::Array(a)) if insert => a.insert(*i, val),
                (Step::Index(i), Value::Array(a)) if c.after.is_none() => {
                    a.remove(*i);
                }
                (Step::Index(i), Value::Array(a)) => a[*i] = val,
                (Step::Key(k), Value::Object(o)) => {
                    o.insert(k.clone(), val);
                }
                (s, p) => panic!("{} does not fit {s:?} in {p}", c.field),
            }
        };
        let is_entry = |c: &FieldChange| c.field.ends_with(']');
        for c in changes
            .iter()
            .filter(|c| c.before.is_some() && c.after.is_some() || !is_entry(c))
        {
            put(v, c, false);
        }
        for c in changes.iter().filter(|c| c.before.is_none() && is_entry(c)) {
            put(v, c, true);
        }
        for c in changes
            .iter()
            .rev()
            .filter(|c| c.after.is_none() && is_entry(c))
        {
            put(v, c, false);
        }
    }

    /// Generated: for bodies and edits of them, every change's `before` is the earlier
    /// version's value at its path and `after` the later one's; the changes applied to the
    /// earlier version give the later one; no change, no difference.
    #[test]
    fn generated_diffs_name_exactly_what_changed() {
        let mut g = Gen(0x9e3779b97f4a7c15);
        let mut nonempty = 0;
        for _ in 0..2000 {
            let a = g.body();
            let b = if g.n(4) == 0 { g.body() } else { g.edit(&a) };
            let (va, vb) = (
                serde_json::to_value(&a).unwrap(),
                serde_json::to_value(&b).unwrap(),
            );
            let c = diff(&a, &b);
            assert_eq!(c.is_empty(), a == b, "{c:?}");
            nonempty += usize::from(!c.is_empty());
            for ch in &c {
                assert!(ch.before.is_some() || ch.after.is_some(), "{ch:?}");
                assert!(!ch.withheld);
                // A value absent on one side is absent at that path, but for a list entry
                // added or removed (the place holds another entry, or none).
                let entry = ch.field.ends_with(']');
                if ch.before.is_some() || !entry {
                    assert_eq!(
                        ch.before.as_ref(),
                        resolve(&va, &ch.field),
                        "{} before",
                        ch.field
                    );
                }
                if ch.after.is_some() || !entry {
                    assert_eq!(
                        ch.after.as_ref(),
                        resolve(&vb, &ch.field),
                        "{} after",
                        ch.field
                    );
                }
            }
            // Each field once.
            let unique: std::collections::HashSet<&str> = fields(&c).into_iter().collect();
            assert_eq!(unique.len(), c.len(), "{c:?}");
            let mut patched = va.clone();
            apply(&mut patched, &c);
            let patched: RecordBody = serde_json::from_value(patched).unwrap();
            assert_eq!(patched, b, "{c:?}");
        }
        assert!(nonempty > 1000, "{nonempty}");
    }
}
