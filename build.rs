// Embedded sqlx migrations are read at compile time; without this, adding a
// migration file would not rebuild the binary and it would keep the old set.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=config/default.toml");
}
