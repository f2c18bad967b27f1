//! shipit's own manual: man pages and shell completions, made from the command line's
//! definition in [`crate::cli`] (whose `release` help lists the channel registry), so they
//! never say something the binary does not do.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::Cli;

/// `shipit(1)`, as roff.
pub fn man_page() -> Vec<u8> {
    let mut out = Vec::new();
    render(Cli::command(), &mut out);
    out
}

/// Writes `shipit.1` and `shipit-<command>.1` for every command (and nested command, as
/// `shipit-ci-github.1`) into `dir`, creating it; the files written, in order.
pub fn write_man_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut root = Cli::command();
    // Subcommands get their full name (`shipit-release`) and the shared version only once
    // the tree is built.
    root.build();
    let mut written = Vec::new();
    write_tree(root, dir, &mut written)?;
    Ok(written)
}

fn write_tree(
    command: clap::Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_string();
    let mut page = Vec::new();
    render(command.clone(), &mut page);
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page)?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        write_tree(sub.clone(), dir, written)?;
    }
    Ok(())
}

fn render(command: clap::Command, out: &mut Vec<u8>) {
    // Writing into memory cannot fail.
    let _ = clap_mangen::Man::new(command).render(out);
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "shipit", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_page_lists_every_channel_of_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_man_pages(dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for page in ["shipit.1", "shipit-release.1", "shipit-ci-github.1"] {
            assert!(names.iter().any(|n| n == page), "{names:?}");
        }
        let release = std::fs::read_to_string(dir.path().join("shipit-release.1")).unwrap();
        for channel in crate::publish::channels() {
            assert!(
                release.contains(channel.name()),
                "{} missing",
                channel.name()
            );
        }
    }

    #[test]
    fn completions_name_the_commands() {
        let bash = String::from_utf8(completions(clap_complete::Shell::Bash)).unwrap();
        assert!(bash.contains("release") && bash.contains("completions"));
    }
}
