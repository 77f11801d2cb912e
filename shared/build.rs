// A new migration file must rebuild the crate that embeds sql/ (include_str! only sees edits).
fn main() {
    println!("cargo:rerun-if-changed=../sql");
}
