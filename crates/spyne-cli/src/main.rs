//! `spyne`: train and evaluate spiking neural networks from the command line.

mod alloc;
mod bench;
mod bench_crossover;
mod bench_layers;
mod eval;
mod model;
mod nir;
mod plot;
mod settings;
mod threads;
mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "spyne",
    version,
    about = "Spiking neural networks trained with BPTT and surrogate gradients"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an SNN on MNIST or an IDX set like it (defaults: snntorch tutorial 5).
    Train(Box<train::TrainArgs>),
    /// Print a network's summary table (layers, output shapes, parameters).
    Model(model::ModelArgs),
    /// Print the test accuracy of a saved model.
    Eval(eval::EvalArgs),
    /// Time a training iteration (the reference job by default); prints one JSON line.
    Bench(bench::BenchArgs),
    /// Draw training curves, spike rasters, membrane traces or spike counts (PNG or SVG).
    #[command(subcommand)]
    Plot(plot::PlotCommand),
    /// Write a saved model as a NIR file (for neuromorphic hardware and other frameworks).
    Export(nir::ExportArgs),
    /// Read a NIR file into a run directory that eval, plot and train --resume accept.
    Import(nir::ImportArgs),
}

fn main() {
    alloc::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(*args),
        Command::Eval(args) => eval::run(args),
        Command::Model(args) => model::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Plot(cmd) => plot::run(cmd),
        Command::Export(args) => nir::export(args),
        Command::Import(args) => nir::import(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
