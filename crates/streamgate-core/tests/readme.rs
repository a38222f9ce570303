//! The README's reason-code table is the code's table.

use streamgate_core::ReasonCode;

fn check(readme: &str, which: &str) {
    let start = readme.find("<!-- reason-codes:start -->").expect("start marker");
    let end = readme.find("<!-- reason-codes:end -->").expect("end marker");
    let table = readme[start..end].lines().skip(1).collect::<Vec<_>>().join("\n");
    let mut expected = String::from("| code | HTTP | meaning |\n|---|---|---|");
    for code in ReasonCode::ALL {
        expected.push_str(&format!("\n| `{}` | {} | {} |", code.as_str(), code.http_status(), code.description()));
    }
    assert_eq!(table.trim(), expected, "{which}: reason-code table differs from ReasonCode; paste the expected table");
}

#[test]
fn readme_reason_tables_match_the_code() {
    check(include_str!("../../../README.md"), "README.md");
    check(include_str!("../../../npm/README.md"), "npm/README.md");
}
