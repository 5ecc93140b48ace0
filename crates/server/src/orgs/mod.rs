//! The organisation directory, held in memory: every request needs to know who an organisation
//! is and whom it works with, and the master changes only when an operator loads a new one.

pub(crate) mod sql;

use std::collections::HashMap;

use tsunagu_masterdata::orgs::{OrgDef, OrgMaster};
use tsunagu_record::api::OrgSummary;
use tsunagu_record::views::OwnerContact;
use tsunagu_record::OrgKind;

use crate::storage::OrgRow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: String,
    pub kind: OrgKind,
    pub name: String,
    /// 1..=47; 0 for national organisations.
    pub pref_code: i64,
    pub lgcode: Option<String>,
    pub phone: String,
    /// For a municipality: the centre whose jurisdiction it is in.
    pub cgc_id: Option<String>,
}

impl Org {
    pub fn summary(&self) -> OrgSummary {
        OrgSummary {
            id: self.id.clone(),
            kind: self.kind,
            name: self.name.clone(),
            pref_code: self.pref_code as u8,
            phone: self.phone.clone(),
        }
    }

    pub fn contact(&self) -> OwnerContact {
        OwnerContact {
            org_id: self.id.clone(),
            org_kind: self.kind,
            name: self.name.clone(),
            phone: self.phone.clone(),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct OrgDirectory {
    by_id: HashMap<String, Org>,
    by_lgcode: HashMap<String, String>,
}

impl OrgDirectory {
    pub fn from_rows(rows: Vec<OrgRow>) -> anyhow::Result<Self> {
        let mut d = OrgDirectory::default();
        for r in rows {
            let kind = OrgKind::from_code(&r.kind).ok_or_else(|| {
                anyhow::anyhow!("organisation {} has unknown kind {}", r.id, r.kind)
            })?;
            if let Some(l) = &r.lgcode {
                d.by_lgcode.insert(l.clone(), r.id.clone());
            }
            d.by_id.insert(
                r.id.clone(),
                Org {
                    id: r.id,
                    kind,
                    name: r.name,
                    pref_code: r.pref_code,
                    lgcode: r.lgcode,
                    phone: r.phone,
                    cgc_id: r.cgc_id,
                },
            );
        }
        Ok(d)
    }

    pub fn get(&self, id: &str) -> Option<&Org> {
        self.by_id.get(id)
    }

    pub fn by_lgcode(&self, lgcode: &str) -> Option<&Org> {
        self.by_lgcode.get(lgcode).and_then(|id| self.by_id.get(id))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Org> {
        self.by_id.values()
    }

    /// The organisations whose records `org` sees at the partner tier (itself excluded):
    /// a centre's municipalities and the other centres of its prefecture; a municipality's
    /// centre.
    pub fn partners_of(&self, org: &Org) -> Vec<&Org> {
        let mut out: Vec<&Org> = match org.kind {
            OrgKind::Cgc => self
                .by_id
                .values()
                .filter(|o| {
                    o.id != org.id
                        && ((o.kind == OrgKind::Municipality
                            && o.cgc_id.as_deref() == Some(&org.id))
                            || (o.kind == OrgKind::Cgc && o.pref_code == org.pref_code))
                })
                .collect(),
            OrgKind::Municipality => org
                .cgc_id
                .as_deref()
                .and_then(|c| self.by_id.get(c))
                .into_iter()
                .collect(),
            OrgKind::Ministry | OrgKind::Operator => Vec::new(),
        };
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

/// Rows for the `orgs` table from a master.
pub fn rows_from_master(m: &OrgMaster) -> Vec<OrgRow> {
    m.orgs.iter().map(row_from_def).collect()
}

fn row_from_def(o: &OrgDef) -> OrgRow {
    OrgRow {
        id: o.id.clone(),
        kind: o.kind.code().to_string(),
        name: o.name.clone(),
        pref_code: o.pref_code as i64,
        lgcode: o.lgcode.clone(),
        phone: o.phone.clone(),
        cgc_id: o.cgc_id.clone(),
    }
}
