//! The Python side of plugins, shipped inside the agent: the runner that hosts one plugin per
//! process, the part of Lightning-rod's package plugins import (`iotronic_lightningrod.modules.
//! plugins`: `Plugin`, `pluginApis`), and a stand-in for `oslo_log` used only when the real one is
//! not installed. They are written under the data dir when the agent starts.

use std::path::{Path, PathBuf};

/// Where the files go, under the data dir.
pub const DIR: &str = "s4t-plugin-runtime";

/// The runner script, relative to [`DIR`].
pub const RUNNER: &str = "s4t_plugin_runner.py";

/// Every file, as (path relative to [`DIR`], contents).
pub const FILES: &[(&str, &str)] = &[
    (RUNNER, include_str!("../../python/s4t_plugin_runner.py")),
    (
        "iotronic_lightningrod/__init__.py",
        include_str!("../../python/iotronic_lightningrod/__init__.py"),
    ),
    (
        "iotronic_lightningrod/modules/__init__.py",
        include_str!("../../python/iotronic_lightningrod/modules/__init__.py"),
    ),
    (
        "iotronic_lightningrod/modules/plugins/__init__.py",
        include_str!("../../python/iotronic_lightningrod/modules/plugins/__init__.py"),
    ),
    (
        "iotronic_lightningrod/modules/plugins/Plugin.py",
        include_str!("../../python/iotronic_lightningrod/modules/plugins/Plugin.py"),
    ),
    (
        "iotronic_lightningrod/modules/plugins/pluginApis.py",
        include_str!("../../python/iotronic_lightningrod/modules/plugins/pluginApis.py"),
    ),
    (
        "fallback/oslo_log/__init__.py",
        include_str!("../../python/fallback/oslo_log/__init__.py"),
    ),
    (
        "fallback/oslo_log/log.py",
        include_str!("../../python/fallback/oslo_log/log.py"),
    ),
];

/// Writes the files under `home/`[`DIR`] (only those that differ); returns that directory.
pub fn install(home: &Path) -> std::io::Result<PathBuf> {
    let root = home.join(DIR);
    for (rel, text) in FILES {
        let path = root.join(rel);
        if std::fs::read(&path).is_ok_and(|old| old == text.as_bytes()) {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        super::conf::write_atomically(&path, text.as_bytes())?;
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_every_file_and_rewrites_only_changes() {
        let home = crate::plugins::test_dir("runtime");
        let root = install(&home).unwrap();
        for (rel, text) in FILES {
            assert_eq!(std::fs::read_to_string(root.join(rel)).unwrap(), *text);
        }
        let runner = root.join(RUNNER);
        std::fs::write(&runner, "stale").unwrap();
        install(&home).unwrap();
        assert_eq!(std::fs::read_to_string(&runner).unwrap(), FILES[0].1);
        std::fs::remove_dir_all(home).unwrap();
    }
}
