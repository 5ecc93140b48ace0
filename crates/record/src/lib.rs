//! The national common record format (児童記録票) shared by the server and the client: code
//! lists, the record's four groups, validation with Japanese messages, search normal forms,
//! Japanese era dates, and the wire types of each visibility tier.
#[macro_use]
pub mod codes;
pub mod api;
pub mod diff;
pub mod era;
pub mod intake;
pub mod lists;
pub mod merge;
pub mod normalize;
pub mod restrict;
pub mod schema;
pub mod transfer;
pub mod validate;
pub mod variants;
pub mod views;

pub use codes::{
    CaseStatus, ConsultationType, FacilityType, OrgKind, Relationship, RiskLevel, Role, Sex,
};
pub use restrict::Restrictions;
pub use schema::RecordBody;
pub use views::{RecordView, Visible, WithheldReason};
