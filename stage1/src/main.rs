//! `hull-stage1`: rkt's stage1 entrypoints in one binary, chosen by the
//! name it runs as (`…/entrypoints/run`) or by its first argument.

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let (name, args) = hull_stage1::entrypoint(&argv);
    std::process::exit(hull_stage1::dispatch(&name, &args));
}
