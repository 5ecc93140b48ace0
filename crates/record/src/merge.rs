//! Three-way merge of two changes of one record made from the same version: what a save
//! against a stale version does instead of overwriting. Changes to different fields are
//! merged; appends to the same list (経過) or to the same text (養育状況) keep both; only a real
//! change of the same field both ways is a conflict, returned with all three values in full.
//! Works on the JSON form of a body, so a field's path is the one validation names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// One field both sides changed differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FieldConflict {
    /// Path of the field, e.g. `casework.findings`.
    pub field: String,
    /// The value in the version both started from.
    pub base: Value,
    /// The value in the change being saved.
    pub mine: Value,
    /// The value saved meanwhile by someone else.
    pub theirs: Value,
}

/// The caller's decision for a field both sides changed: keep the value sent or the one saved
/// meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Mine,
    Theirs,
}

/// Decisions by field path (`casework.findings`), as the 409's `conflicts` named them.
pub type Resolutions = BTreeMap<String, Resolution>;

/// A merge that needed no one's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub value: Value,
    /// Fields where the other change was kept beside this one (theirs alone, or both appends).
    pub merged: Vec<String>,
}

/// Merges `mine` and `theirs`, both made from `base`.
pub fn merge(base: &Value, mine: &Value, theirs: &Value) -> Result<Merged, Vec<FieldConflict>> {
    merge_resolving(base, mine, theirs, &Resolutions::new())
}

/// As [`merge`], with the caller's decisions for fields both changed: a field decided is no
/// conflict (taking theirs is listed as kept); an undecided one still is.
pub fn merge_resolving(
    base: &Value,
    mine: &Value,
    theirs: &Value,
    resolve: &Resolutions,
) -> Result<Merged, Vec<FieldConflict>> {
    let mut merged = Vec::new();
    let mut conflicts = Vec::new();
    let mut w = Walk {
        merged: &mut merged,
        conflicts: &mut conflicts,
        resolve,
    };
    let value = w.walk("", base, mine, theirs);
    if conflicts.is_empty() {
        Ok(Merged { value, merged })
    } else {
        Err(conflicts)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

struct Walk<'a> {
    merged: &'a mut Vec<String>,
    conflicts: &'a mut Vec<FieldConflict>,
    resolve: &'a Resolutions,
}

impl Walk<'_> {
    fn walk(&mut self, path: &str, base: &Value, mine: &Value, theirs: &Value) -> Value {
        if mine == theirs {
            return mine.clone();
        }
        if mine == base {
            Self::changed_paths(path, base, theirs, self.merged);
            return theirs.clone();
        }
        if theirs == base {
            return mine.clone();
        }
        match (base, mine, theirs) {
            (Value::Object(b), Value::Object(m), Value::Object(t)) => {
                let mut keys: Vec<&String> = b.keys().chain(m.keys()).chain(t.keys()).collect();
                keys.sort();
                keys.dedup();
                let mut out = Map::new();
                for k in keys {
                    let get = |o: &Map<String, Value>| o.get(k).cloned().unwrap_or(Value::Null);
                    let v = self.walk(&join(path, k), &get(b), &get(m), &get(t));
                    if !(v.is_null() && !m.contains_key(k) && !t.contains_key(k)) {
                        out.insert(k.clone(), v);
                    }
                }
                Value::Object(out)
            }
            (Value::Array(b), Value::Array(m), Value::Array(t)) => {
                if m.len() >= b.len() && t.len() >= b.len() {
                    // Entries the base had, changed in place, merged entry by entry (a
                    // correction of one entry and of another, or of the same entry's other
                    // field); entries either side appended are all kept, the other's first, as
                    // they were saved first (経過 written by two people at once).
                    let mut out: Vec<Value> = (0..b.len())
                        .map(|i| self.walk(&format!("{path}[{i}]"), &b[i], &m[i], &t[i]))
                        .collect();
                    let (mine_added, theirs_added) = (&m[b.len()..], &t[b.len()..]);
                    if !theirs_added.is_empty() {
                        self.merged.push(path.to_string());
                    }
                    out.extend(theirs_added.iter().cloned());
                    out.extend(mine_added.iter().cloned());
                    return Value::Array(out);
                }
                // An entry removed on one side while the list changed on the other: whose
                // entry is whose cannot be told by position, so the people decide.
                self.conflict(path, base, mine, theirs)
            }
            (Value::String(b), Value::String(m), Value::String(t))
                if m.starts_with(b.as_str()) && t.starts_with(b.as_str()) =>
            {
                // Both added to the end of the same text (養育状況): the other's addition first,
                // then this one, on a line of its own.
                self.merged.push(path.to_string());
                let mine_added = &m[b.len()..];
                let mut out = t.clone();
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(mine_added.trim_start_matches('\n'));
                Value::String(out)
            }
            _ => self.conflict(path, base, mine, theirs),
        }
    }
    /// The fields where `after` differs from `before`, as leaf paths (objects are walked, a list
    /// or a value is one field).
    fn changed_paths(path: &str, before: &Value, after: &Value, out: &mut Vec<String>) {
        match (before, after) {
            (Value::Object(b), Value::Object(a)) => {
                let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let get = |o: &Map<String, Value>| o.get(k).cloned().unwrap_or(Value::Null);
                    Self::changed_paths(&join(path, k), &get(b), &get(a), out);
                }
            }
            _ if before != after => out.push(path.to_string()),
            _ => {}
        }
    }

    fn conflict(&mut self, path: &str, base: &Value, mine: &Value, theirs: &Value) -> Value {
        match self.resolve.get(path) {
            Some(Resolution::Mine) => mine.clone(),
            Some(Resolution::Theirs) => {
                self.merged.push(path.to_string());
                theirs.clone()
            }
            None => {
                self.conflicts.push(FieldConflict {
                    field: path.to_string(),
                    base: base.clone(),
                    mine: mine.clone(),
                    theirs: theirs.clone(),
                });
                theirs.clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_correction_and_an_append_from_the_same_version_are_both_kept() {
        let base = json!({ "progress": [ { "date": "2026-01-10", "text": "初回" }, { "date": "2026-01-11", "text": "二回目" } ] });
        // Mine corrects the first entry; theirs appended one.
        let mine = json!({ "progress": [ { "date": "2026-01-10", "text": "初回（訂正）" }, { "date": "2026-01-11", "text": "二回目" } ] });
        let theirs = json!({ "progress": [ { "date": "2026-01-10", "text": "初回" }, { "date": "2026-01-11", "text": "二回目" }, { "date": "2026-01-12", "text": "三回目" } ] });
        let m = merge(&base, &mine, &theirs).unwrap();
        assert_eq!(m.value["progress"][0]["text"], "初回（訂正）");
        assert_eq!(m.value["progress"][2]["text"], "三回目");
        assert_eq!(m.value["progress"].as_array().unwrap().len(), 3);
        // Both appended after each correcting another entry: everything kept.
        let mine = json!({ "progress": [ { "date": "2026-01-10", "text": "初回（訂正）" }, { "date": "2026-01-11", "text": "二回目" }, { "date": "2026-01-13", "text": "私" } ] });
        let theirs = json!({ "progress": [ { "date": "2026-01-10", "text": "初回" }, { "date": "2026-01-11", "text": "二回目（訂正）" }, { "date": "2026-01-12", "text": "相手" } ] });
        let m = merge(&base, &mine, &theirs).unwrap();
        let texts: Vec<&str> = m.value["progress"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["初回（訂正）", "二回目（訂正）", "相手", "私"]);
        // The same entry's text rewritten both ways: that entry's text is the conflict, named
        // by its path, with both in full.
        let mine = json!({ "progress": [ { "date": "2026-01-10", "text": "一回目（訂正）" }, { "date": "2026-01-11", "text": "二回目" }, { "date": "2026-01-13", "text": "私" } ] });
        let theirs = json!({ "progress": [ { "date": "2026-01-10", "text": "第一回（別の訂正）" }, { "date": "2026-01-11", "text": "二回目" } ] });
        let c = merge(&base, &mine, &theirs).unwrap_err();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "progress[0].text");
        assert_eq!(c[0].mine, "一回目（訂正）");
        assert_eq!(c[0].theirs, "第一回（別の訂正）");
        // A removal on one side while the other changed the list: decided by people.
        let mine = json!({ "progress": [ { "date": "2026-01-11", "text": "二回目" } ] });
        assert!(merge(&base, &mine, &theirs).is_err());
    }

    fn body() -> Value {
        json!({
            "core": { "child_name": { "family": "試験", "given": "花子" }, "sex": 2 },
            "family": { "upbringing": "母と二人暮らし。", "household": [] },
            "casework": { "findings": "所見A", "progress": [{ "date": "2026-01-10", "text": "初回" }] }
        })
    }

    #[test]
    fn different_fields_merge_and_say_what_was_kept() {
        let base = body();
        let mut mine = body();
        mine["core"]["child_name"]["given"] = json!("花菜");
        let mut theirs = body();
        theirs["casework"]["findings"] = json!("所見B");
        let m = merge(&base, &mine, &theirs).unwrap();
        assert_eq!(m.value["core"]["child_name"]["given"], "花菜");
        assert_eq!(m.value["casework"]["findings"], "所見B");
        assert_eq!(m.merged, ["casework.findings"]);
    }

    #[test]
    fn two_appends_keep_both() {
        let base = body();
        let mut mine = body();
        mine["casework"]["progress"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "date": "2026-02-01", "text": "家庭訪問" }));
        mine["family"]["upbringing"] = json!("母と二人暮らし。\n祖母が週末に来る。");
        let mut theirs = body();
        theirs["casework"]["progress"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "date": "2026-02-01", "text": "学校から電話" }));
        theirs["family"]["upbringing"] = json!("母と二人暮らし。夜間は一人。");
        let m = merge(&base, &mine, &theirs).unwrap();
        let texts: Vec<&str> = m.value["casework"]["progress"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["初回", "学校から電話", "家庭訪問"]);
        assert_eq!(
            m.value["family"]["upbringing"],
            "母と二人暮らし。夜間は一人。\n祖母が週末に来る。"
        );
        assert_eq!(m.merged, ["casework.progress", "family.upbringing"]);
    }

    #[test]
    fn the_same_field_changed_both_ways_is_a_conflict_with_all_three_in_full() {
        let base = body();
        let mut mine = body();
        mine["casework"]["findings"] = json!("所見（私）".repeat(300));
        mine["core"]["sex"] = json!(1);
        let mut theirs = body();
        theirs["casework"]["findings"] = json!("所見（相手）");
        let c = merge(&base, &mine, &theirs).unwrap_err();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "casework.findings");
        assert_eq!(c[0].base, json!("所見A"));
        assert_eq!(c[0].mine, json!("所見（私）".repeat(300)), "never cut");
        assert_eq!(c[0].theirs, json!("所見（相手）"));
    }

    #[test]
    fn a_list_entry_changed_in_place_on_each_side() {
        let base = json!({ "g": [{ "n": "a", "r": 1 }, { "n": "b", "r": 2 }] });
        let mine = json!({ "g": [{ "n": "A", "r": 1 }, { "n": "b", "r": 2 }] });
        let theirs = json!({ "g": [{ "n": "a", "r": 1 }, { "n": "b", "r": 3 }] });
        let m = merge(&base, &mine, &theirs).unwrap();
        assert_eq!(
            m.value,
            json!({ "g": [{ "n": "A", "r": 1 }, { "n": "b", "r": 3 }] })
        );
        // One side removed an entry, the other changed it: a conflict on the list.
        let removed = json!({ "g": [{ "n": "a", "r": 1 }] });
        let c = merge(&base, &removed, &theirs).unwrap_err();
        assert_eq!(c[0].field, "g");
    }

    /// Generated: for any split of a set of field changes between two people, the merge holds
    /// every change, whoever made it, and no conflict arises.
    #[test]
    fn disjoint_changes_always_merge_to_both() {
        let fields = ["a", "b", "c", "d", "e", "f"];
        let base: Value = Value::Object(fields.iter().map(|f| (f.to_string(), json!(0))).collect());
        let mut seed = 0x9e3779b97f4a7c15u64;
        for _ in 0..500 {
            let (mut mine, mut theirs, mut want) = (base.clone(), base.clone(), base.clone());
            for f in fields {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let v = json!((seed % 100) as i64 + 1);
                match seed % 3 {
                    0 => mine[f] = v.clone(),
                    1 => theirs[f] = v.clone(),
                    _ => continue,
                }
                want[f] = v;
            }
            assert_eq!(merge(&base, &mine, &theirs).unwrap().value, want);
        }
    }

    #[test]
    fn a_decided_field_is_no_conflict_and_the_rest_still_merges() {
        let base = json!({ "a": 1, "b": 1, "c": 1 });
        let mine = json!({ "a": 2, "b": 2, "c": 1 });
        let theirs = json!({ "a": 3, "b": 1, "c": 3 });
        let mut r = Resolutions::new();
        r.insert("a".into(), Resolution::Mine);
        let m = merge_resolving(&base, &mine, &theirs, &r).unwrap();
        assert_eq!(m.value, json!({ "a": 2, "b": 2, "c": 3 }));
        r.insert("a".into(), Resolution::Theirs);
        let m = merge_resolving(&base, &mine, &theirs, &r).unwrap();
        assert_eq!(m.value, json!({ "a": 3, "b": 2, "c": 3 }));
        assert_eq!(m.merged, ["a", "c"]);
        // A decision for another field leaves this one a conflict.
        let mut other = Resolutions::new();
        other.insert("z".into(), Resolution::Mine);
        assert_eq!(
            merge_resolving(&base, &mine, &theirs, &other).unwrap_err()[0].field,
            "a"
        );
    }
}
