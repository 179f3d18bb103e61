//! The `raftkv` binary: parse flags, run the node, map errors to an exit code (1).

use clap::Parser;

fn main() {
    let args = raftkv::config::Args::parse();
    let cfg = match args.validate() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("raftkv: error: {e}");
            std::process::exit(2);
        }
    };
    raftkv::logging::init(&cfg.name, cfg.log_level);
    if let Err(e) = run(cfg) {
        // The node's errors name their causes themselves, e.g. which file and offset is corrupt
        // (`{:#}` would print each cause twice).
        raftkv::error!("fatal: {e}");
        std::process::exit(1);
    }
}

fn run(cfg: raftkv::config::NodeConfig) -> anyhow::Result<()> {
    raftkv::node::run(cfg)?;
    Ok(())
}
