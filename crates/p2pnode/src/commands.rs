//! One function per subcommand.

use std::path::{Path, PathBuf};

use anyhow::bail;
use node::{Node, Survey};

use crate::cli::{Cli, Command, Global};
use crate::output;
use crate::progress::Progress;

/// Runs the parsed command.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    match &cli.command {
        Command::Serve => serve(g).await,
        Command::Peers => {
            let peers = Survey::start(&g.net()?)?.peers().await?;
            output::peers(&peers, g.json);
            Ok(())
        }
        Command::Ls => {
            let mut survey = Survey::start(&g.net()?)?;
            let peers = survey.peers().await?;
            let dictionary = survey.dictionary().await?;
            output::files(&dictionary, &peers, g.json);
            Ok(())
        }
        Command::Get { file, output } => get(g, file, output.as_deref()).await,
    }
}

async fn serve(g: &Global) -> anyhow::Result<()> {
    let config = g.serve()?;
    let node = Node::bind(config.clone()).await?;
    output::serving(&config, &node, g.json);
    node.run(shutdown_signal()).await?;
    Ok(())
}

async fn get(g: &Global, file: &str, output: Option<&Path>) -> anyhow::Result<()> {
    let net = g.net()?;
    let dir: PathBuf = output.map_or_else(|| g.downloads(), Path::to_path_buf);
    let mut survey = Survey::start(&net)?;
    let (id, entry, sources) = survey.find(file).await?;
    if sources.is_empty() {
        bail!("the peers hosting '{}' do not serve --transport {}", entry.name, net.transport);
    }
    let transport = node::transport_for(net.transport, net.transport_config(), None);
    let mut progress = Progress::new(g.json);
    let path = node::download(transport, id, &sources, &dir, net.timeout, |e| progress.on(e)).await;
    progress.end(path.as_ref().ok(), id);
    path?;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
    tracing::info!("shutting down");
}
