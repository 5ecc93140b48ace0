//! One module per screen: its state, what its actions do, and how it is drawn.
pub mod case_list;
pub mod help;
pub mod intake;
pub mod intake_list;
pub mod login;
pub mod menu;
pub mod notifications;
pub mod record;
pub mod search;
