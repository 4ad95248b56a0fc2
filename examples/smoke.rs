use tracing_subscriber::prelude::*;
fn main() {
    let dir = std::env::args().nth(1).unwrap_or("/tmp/smoke".into());
    let (layer, guard) = tracing_filesink::FileSink::builder(&dir, "app")
        .build()
        .unwrap();
    let sub = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(sub, || {
        let s = tracing::info_span!("outer", a = 1, b = "x\ny");
        let _e = s.enter();
        tracing::info!(n = 5, f = 1.5, ok = true, s = "line\nbreak \x1b[31m", d = ?vec![1,2], "hello {}", "world\r\n");
        tracing::warn!("plain");
    });
    guard.flush().unwrap();
    println!("{:?}", guard.stats());
}
