//! tsunagu terminal client. The full-screen client is built in its own issue; until then this
//! binary only says where the server is.
fn main() {
    println!("tsunagu: the terminal client is not built yet; run the server with `cargo run -p tsunagu-server -- serve`.");
}
