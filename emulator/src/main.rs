#![forbid(unsafe_code)]
fn main() {
    eprintln!("polar-emulator: not built yet");
    std::process::exit(2);
}
