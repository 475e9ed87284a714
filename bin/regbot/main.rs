//! regbot: runs Lua scripts against registries, once or on a schedule.

fn main() {
    eprintln!("regbot: not built yet");
    std::process::exit(1);
}
