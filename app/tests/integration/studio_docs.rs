//! `docs/studio.md` lists every key from the action registry; this keeps it current.
//! `UPDATE_DOCS=1 cargo test -p graflow --test studio_docs` rewrites the table.

use std::path::Path;

use graflow::studio::action::markdown_table;
use graflow::studio::keymap::Keymap;

const START: &str = "<!-- keys:start -->\n";
const END: &str = "<!-- keys:end -->";

#[test]
fn the_keys_table_matches_the_registry() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/studio.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (Some(s), Some(e)) = (doc.find(START), doc.find(END)) else {
        panic!("docs/studio.md has no keys markers");
    };
    let keymap = Keymap::default();
    let table = markdown_table(|a| keymap.key_names(a));
    let current = &doc[s + START.len()..e];
    if current != table {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            let updated = format!("{}{table}{}", &doc[..s + START.len()], &doc[e..]);
            std::fs::write(&path, updated).unwrap_or_else(|e| panic!("{e}"));
        } else {
            panic!("docs/studio.md's key table is out of date; run with UPDATE_DOCS=1\n{table}");
        }
    }
}
