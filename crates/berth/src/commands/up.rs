//! `berth up`: Berth on this machine in one process — the server on the embedded store with
//! cluster `default` created, ready for the AWS CLI.

use super::server::ServerArgs;
use anyhow::Context;
use clap::Args;

/// Options of `berth up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Starts the server, makes sure cluster `default` exists, and serves until Ctrl-C.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let server = berth_server::serve(args.server.config())
        .await
        .context("berth could not start")?;
    let endpoint = format!("http://{}", server.addr());
    berth_server::handlers::clusters::ensure_cluster(&server.app(), "default")
        .await
        .context("could not create cluster 'default'")?;
    println!("Berth is up. ECS endpoint: {endpoint}  (cluster: default)");
    println!("Try:  aws --endpoint-url {endpoint} ecs list-clusters");
    super::shutdown_signal().await;
    println!("Stopping Berth.");
    server
        .shutdown()
        .await
        .context("server stopped with an error")?;
    Ok(())
}
