import CLinux
import Relay

/// `sluice serve`: the HTTP API until SIGTERM/SIGINT. Signals are blocked in every thread and taken synchronously
/// by the main thread, so no handler runs in signal context.
public enum Serve {
    public static let defaultListen = "127.0.0.1:30003"

    public static func run(_ options: ServeOptions) -> Int32 {
        let listen = options.listen ?? defaultListen
        guard let address = SocketAddress(hostPort: listen) else {
            Output.err("sluice serve: --listen: '\(listen)' is not ADDR:PORT with a numeric address\n")
            return 1
        }
        let signals: [Int32] = [SIGTERM, SIGINT, SIGHUP]
        cl_ignore_sigpipe()
        _ = signals.withUnsafeBufferPointer { cl_block_signals($0.baseAddress, Int32($0.count)) }
        guard SSHLibrary.initialize() else {
            Log.error("ssh.init_failed")
            return 2
        }
        defer { SSHLibrary.shutdown() }

        let server = HTTPServer(handler: Router())
        guard let port = server.start(HTTPServer.Settings(address: address)) else {
            Log.error("serve.listen_failed", [("addr", address.description), ("error", "cannot bind")])
            Output.err("sluice serve: cannot listen on \(address.description)\n")
            return 2
        }
        var bound = address
        bound = SocketAddress(ip: address.ipString, port: port) ?? address
        Log.info("serve.listening", [("addr", bound.description), ("version", BuildInfo.version)])

        while true {
            let signal = signals.withUnsafeBufferPointer { cl_wait_signal($0.baseAddress, Int32($0.count), 1000) }
            if signal == SIGTERM || signal == SIGINT {
                Log.info("serve.stopping", [("signal", signal == SIGTERM ? "TERM" : "INT")])
                break
            }
            if signal == SIGHUP {
                Log.info("config.reload_skipped", [("reason", "no configuration file in use")])
            }
        }
        server.stop()
        Log.info("serve.stopped")
        return 0
    }
}
