//! The national common record format (児童記録票) shared by the server and the client.
pub mod codes;
