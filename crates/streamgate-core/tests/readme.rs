//! The README's reason-code table is the code's table.

use streamgate_core::ReasonCode;

#[test]
fn readme_reason_table_matches_the_code() {
    let readme = include_str!("../../../README.md");
    let start = readme.find("<!-- reason-codes:start -->").expect("start marker");
    let end = readme.find("<!-- reason-codes:end -->").expect("end marker");
    let table = readme[start..end].lines().skip(1).collect::<Vec<_>>().join("\n");
    let mut expected = String::from("| code | HTTP | meaning |\n|---|---|---|");
    for code in ReasonCode::ALL {
        expected.push_str(&format!("\n| `{}` | {} | {} |", code.as_str(), code.http_status(), code.description()));
    }
    assert_eq!(table.trim(), expected, "README reason-code table differs from ReasonCode; paste the expected table");
}
