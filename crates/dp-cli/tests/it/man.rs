//! The man pages: each one renders (groff, else `man -l`, whichever the machine has) and shows every option of
//! its command, and there is one page per command.

use std::process::{Command, Stdio};

/// Renders roff as plain ASCII, 200 columns wide, without hyphenation (so option names are never split).
/// `None` when neither groff nor man is installed.
fn render(roff: &str, dir: &std::path::Path, file_name: &str) -> Option<String> {
    let path = dir.join(file_name);
    std::fs::write(&path, roff).unwrap();
    let attempts: [(&str, Vec<&str>); 2] = [
        (
            "groff",
            vec!["-man", "-Tascii", "-rHY=0", "-rLL=200n", "-P-cbou", "-ww"],
        ),
        ("man", vec!["-l", "-Tascii", "-P", "cat"]),
    ];
    for (program, args) in attempts {
        let mut cmd = Command::new(program);
        cmd.args(&args)
            .arg(&path)
            .env("MANWIDTH", "200")
            .env("MAN_KEEP_FORMATTING", "0")
            .stdin(Stdio::null());
        let Ok(out) = cmd.output() else { continue };
        assert!(
            out.status.success(),
            "{program} failed on {file_name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(
            !warnings.contains("warning"),
            "{program} warns about {file_name}: {warnings}"
        );
        return Some(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    None
}

#[test]
fn every_page_renders_and_shows_every_option() {
    let pages = dp_cli::cli::man::pages();
    let dir = std::env::temp_dir().join(format!("dp-man-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rendered_with_a_formatter = 0;
    for page in &pages {
        let text = render(&page.roff, &dir, &page.file_name);
        if text.is_some() {
            rendered_with_a_formatter += 1;
        }
        // Without groff or man, the roff source itself must name the options (escaped as `\-\-name`).
        let haystack = text.unwrap_or_else(|| page.roff.replace("\\-", "-"));
        let name = page.command.get_name();
        assert!(
            haystack.contains(name),
            "{}: no NAME {name}",
            page.file_name
        );
        for arg in page.command.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    haystack.contains(&format!("--{long}")),
                    "{}: option --{long} missing from the rendered page",
                    page.file_name
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let dp = pages.iter().find(|p| p.file_name == "dp.1").expect("dp(1)");
    assert!(dp.roff.contains("EXIT STATUS") && dp.roff.contains("252"));
    eprintln!(
        "{rendered_with_a_formatter} of {} pages rendered with groff or man",
        pages.len()
    );
}

#[test]
fn one_page_per_command() {
    let names: Vec<String> = dp_cli::cli::man::pages()
        .into_iter()
        .map(|p| p.file_name)
        .collect();
    for op in dp_model::operations() {
        let file = format!("dp-{}.1", op.cli_name);
        assert!(names.contains(&file), "no {file} in {names:?}");
    }
    for extra in ["dp.1", "dp-list-runs.1", "dp-create-default-roles.1"] {
        assert!(names.iter().any(|n| n == extra), "no {extra} in {names:?}");
    }
}
