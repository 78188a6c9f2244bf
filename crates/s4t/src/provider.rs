//! `s4t provider`: the Crossplane provider's commands.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ProviderCmd {
    /// Write the provider's CustomResourceDefinitions (generated from its Rust types), one YAML
    /// file per kind, into DIR; `--check` only compares and fails on any difference.
    Crds {
        #[arg(long, default_value = "package/crds")]
        dir: PathBuf,
        #[arg(long)]
        check: bool,
    },
}

pub fn run(cmd: ProviderCmd) -> anyhow::Result<()> {
    match cmd {
        ProviderCmd::Crds { dir, check } => {
            let files = s4t_provider::apis::crd_files();
            if check {
                let stale: Vec<String> = files
                    .iter()
                    .filter(|(name, text)| {
                        std::fs::read_to_string(dir.join(name)).ok().as_deref() != Some(text)
                    })
                    .map(|(name, _)| name.clone())
                    .collect();
                anyhow::ensure!(
                    stale.is_empty(),
                    "{} differ from the generated CRDs: run `s4t provider crds --dir {}`",
                    stale.join(", "),
                    dir.display()
                );
                return Ok(());
            }
            std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
            for (name, text) in &files {
                let file = dir.join(name);
                std::fs::write(&file, text).with_context(|| format!("{}", file.display()))?;
                println!("{}", file.display());
            }
            Ok(())
        }
    }
}
