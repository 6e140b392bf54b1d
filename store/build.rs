//! The migrations are embedded in the crate (`embed_migrations!`): a new
//! one must rebuild it, which cargo does not know without this.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
