//! Transfers when a family moves (転出・転入): the owner offers a record (with the siblings of one
//! household, as one family transfer) to the destination organisation, which reads what was
//! provided, then confirms (a record of its own is registered from it) or declines with a
//! reason; the origin may withdraw an offer not yet decided. These are the wire types; the
//! rules are the server's (`transfers/`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::restrict::Field;
use crate::schema::PersonName;
use crate::validate::{Errors, FieldError};
use crate::views::{OwnerContact, RecordView};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

code_list!(
    /// Where a transfer stands.
    TransferStatus {
        Pending = "pending": "回答待ち",
        Confirmed = "confirmed": "受入済み",
        Declined = "declined": "辞退",
        Withdrawn = "withdrawn": "取下げ",
    }
);

code_list!(
    /// Which transfers a list shows: those the caller's organisation offered, or received.
    TransferBox {
        Outgoing = "outgoing": "送付",
        Incoming = "incoming": "受付",
    }
);

/// The longest message of an offer, in characters.
pub const MESSAGE_MAX: usize = 4_000;
/// The longest reason of a decline, in characters.
pub const REASON_MAX: usize = 4_000;
/// The most records one family transfer carries (the record and its siblings).
pub const FAMILY_MAX: usize = 10;

/// Body of `POST /records/{id}/transfers`: offer the record (and its siblings) to another
/// organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OfferTransfer {
    /// The destination: a child guidance centre or a municipality, of any prefecture.
    pub to_org_id: String,
    /// To the destination: why the record moves, whom to call.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 4000,
            pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub message: String,
    /// Fields not provided beyond what the owner restricted on each record (default: none, so
    /// everything but the owner's restrictions is provided).
    #[serde(default)]
    pub withhold: Vec<Field>,
    /// Other records of the same household owned by the origin, offered with this one as one
    /// family transfer: confirmed, declined or withdrawn together.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 9))]
    pub siblings: Vec<i64>,
}

/// Checks an offer's own fields (the server checks the destination and the records).
pub fn validate_offer(o: &OfferTransfer) -> Result<(), Vec<FieldError>> {
    let mut e = Errors::default();
    e.text("message", "移管の連絡事項", &o.message, MESSAGE_MAX);
    if o.siblings.len() + 1 > FAMILY_MAX {
        e.push(
            "siblings",
            "too_many",
            format!(
                "一度に移管できる記録は{FAMILY_MAX}件までです（兄弟姉妹は{}件まで）",
                FAMILY_MAX - 1
            ),
        );
    }
    e.into_result()
}

/// Body of `POST /transfers/{id}/decline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeclineTransfer {
    /// Why the destination does not take the record (required: missing or blank is refused by
    /// name).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 4000,
            pattern = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
        )
    )]
    pub reason: String,
}

/// Checks a decline: a reason is required.
pub fn validate_decline(d: &DeclineTransfer) -> Result<(), Vec<FieldError>> {
    let mut e = Errors::default();
    e.required("reason", "辞退の理由", &d.reason);
    e.text("reason", "辞退の理由", &d.reason, REASON_MAX);
    e.into_result()
}

/// An organisation taking part in a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TransferParty {
    pub org_id: String,
    pub name: String,
}

/// Where a record registered by a confirmed transfer came from (shown on it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Provenance {
    pub transfer_id: i64,
    /// The organisation that owned the record before.
    pub origin: TransferParty,
    /// Its record, kept read-only as transferred out.
    pub origin_record_id: i64,
    pub transferred_at: DateTime<Utc>,
}

/// Where a record transferred out went (shown on the origin's read-only record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TransferredTo {
    pub transfer_id: i64,
    pub destination: TransferParty,
    /// The destination's record registered from this one.
    pub record_id: i64,
    pub transferred_at: DateTime<Utc>,
}

/// One record of a transfer, as the viewer's tier shows it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TransferItem {
    /// The origin's record.
    pub record_id: i64,
    /// The destination's record, once confirmed.
    pub new_record_id: Option<i64>,
    /// The record as the viewer may see it now (the destination of a pending offer: what was
    /// provided, `tier: "transfer"`); absent where the viewer has no tier for it. A read by
    /// another organisation than the owner is logged, as a read of the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordView>,
}

/// A transfer as its two organisations see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TransferView {
    pub id: i64,
    pub status: TransferStatus,
    pub from: OwnerContact,
    pub to: OwnerContact,
    pub message: String,
    /// Fields not provided beyond each record's owner restrictions.
    pub withhold: Vec<Field>,
    pub offered_at: DateTime<Utc>,
    pub offered_by: String,
    /// Seconds since the offer, as of this answer.
    pub age_secs: i64,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    /// A decline's reason.
    pub reason: Option<String>,
    /// The record offered first, then its siblings.
    pub records: Vec<TransferItem>,
}

/// One record of a transfer in a list: which child, as the viewer's tier shows it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TransferListItem {
    pub record_id: i64,
    pub new_record_id: Option<i64>,
    /// Absent where the viewer has no tier for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_name: Option<PersonName>,
}

/// One row of the outgoing (送付) or incoming (受付) list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TransferSummary {
    pub id: i64,
    pub status: TransferStatus,
    pub from: OwnerContact,
    pub to: OwnerContact,
    pub offered_at: DateTime<Utc>,
    /// Seconds since the offer, as of this answer.
    pub age_secs: i64,
    pub decided_at: Option<DateTime<Utc>>,
    pub records: Vec<TransferListItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TransferList {
    pub items: Vec<TransferSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decline_needs_a_reason_and_an_offer_a_bounded_family() {
        let err = validate_decline(&DeclineTransfer {
            reason: " \u{3000}".into(),
        })
        .unwrap_err();
        assert_eq!(err[0].field, "reason");
        assert!(err[0].message.contains("辞退の理由"), "{}", err[0].message);
        assert!(validate_decline(&DeclineTransfer {
            reason: "管轄外のため".into()
        })
        .is_ok());
        let mut o = OfferTransfer {
            to_org_id: "x".into(),
            message: "転居のため".into(),
            withhold: vec![],
            siblings: (1..FAMILY_MAX as i64).collect(),
        };
        assert!(validate_offer(&o).is_ok());
        o.siblings.push(99);
        assert_eq!(validate_offer(&o).unwrap_err()[0].field, "siblings");
        o.siblings.clear();
        o.message = "改行は可\n制御文字は不可\u{7}".into();
        let err = validate_offer(&o).unwrap_err();
        assert_eq!(err[0].field, "message");
    }
}
