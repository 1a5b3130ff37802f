//! `snaplabel label` as a user runs it.

use std::process::Command;

use snaplabel_fixtures::photos;

fn snaplabel(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_snaplabel"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn json_output_is_one_line_per_image_in_order() {
    let dir = photos();
    let (code, stdout, stderr) = snaplabel(&["label", "--json", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let files: Vec<String> = lines
        .iter()
        .map(|l| {
            l["file"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        files,
        [
            "astronaut.png",
            "basketball.png",
            "chelsea.png",
            "coffee.png",
            "football.jpg",
            "grace_hopper.jpg",
            "home.jpg",
            "motorcycle_left.png",
            "page.png",
            "rocket.jpg"
        ]
    );
    for line in &lines {
        assert_eq!(line["status"], "ok");
        assert!(
            line["Labels"].as_array().is_some_and(|l| !l.is_empty()),
            "{line}"
        );
        assert!(line["ImageProperties"]["Quality"]["Brightness"].is_number());
        assert!(line["timings_ms"]["inference"].as_f64().unwrap() > 0.0);
    }
    let chelsea = &lines[2];
    assert!(
        chelsea["Labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["Name"] == "Cat"),
        "{chelsea}"
    );
    assert!(stderr.contains("10 images"), "{stderr}");
}

#[test]
fn failures_are_reported_per_file_and_in_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("holiday.jpg");
    std::fs::write(&text, b"a shopping list, not a photo").unwrap();
    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.path().join("nope.jpg");
    let cat = photos().join("chelsea.png");
    let (code, stdout, _) = snaplabel(&[
        "label",
        "--json",
        "--max-labels",
        "3",
        cat.to_str().unwrap(),
        text.to_str().unwrap(),
        empty.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["status"], "ok");
    assert!(lines[0]["Labels"].as_array().unwrap().len() <= 3);
    assert_eq!(lines[1]["error"]["code"], "unsupported_format");
    assert_eq!(lines[2]["error"]["code"], "empty_object");
    assert_eq!(lines[3]["error"]["code"], "object_missing");
}

#[test]
fn the_table_reads_well() {
    let cat = photos().join("chelsea.png");
    let (code, stdout, _) = snaplabel(&["label", "--engine", "tract", cat.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("chelsea.png  (451×300 png"), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("%  Cat")), "{stdout}");
}

#[test]
fn bad_arguments_are_explained() {
    let (code, _, stderr) = snaplabel(&["label", "--engine", "gpu", "x.jpg"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown engine"), "{stderr}");
}
