//! Master data shared by the server, the client and the test tools: prefectures and
//! municipalities ([`localgov`]), the organisation master with CGC jurisdictions ([`orgs`]), and
//! synthetic people ([`names`], [`people`]) for demos, tests and benchmarks.
//!
//! All data is embedded at compile time so that binaries need no data files and agree on the
//! same codes.
//!
//! # NOTICE
//!
//! The embedded data is not under the project's code license. Its sources and licenses, which
//! copies must keep, are in `data/*/SOURCE.md`: `data/localgov/SOURCE.md` (CC0 1.0) and
//! `data/names/SOURCE.md` (IPA dictionary, BSD-3-Clause-with-ICOT-term).

pub mod localgov;
pub mod names;
pub mod orgs;
pub mod people;

pub use localgov::{Municipality, Prefecture};
pub use names::{NameEntry, NameKind};
pub use orgs::{MasterError, OrgDef, OrgMaster};
pub use people::{PeopleGenerator, SyntheticChild, SyntheticName};
