import CLinux
import CSSH2

/// How a server's host key is trusted (appliance.md §2).
public enum HostKeyPolicy {
    /// An OpenSSH public-key line, decoded: only `algorithm` is offered in the handshake and the blob must match.
    case pinnedKey(algorithm: String, blob: [UInt8])
    /// The 32 bytes of a `SHA256:` fingerprint.
    case fingerprint([UInt8])
    /// Trust on first use, recorded in an OpenSSH known_hosts file.
    case knownHosts(path: String)

    /// The LIBSSH2_METHOD_HOSTKEY preference, set before the handshake. Without a pin, ed25519 comes first: that is
    /// what OpenSSH records, and libssh2's own default (ECDSA first) would compare against the wrong entry.
    var methodPreference: String {
        switch self {
        case .pinnedKey(let algorithm, _): return algorithm
        default: return "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-rsa"
        }
    }
}

enum HostKeyCheck {
    /// nil when the key is trusted; else why not (for the log; the attempt's reason is the fixed spec text).
    static func verify(_ session: OpaquePointer, policy: HostKeyPolicy, ip: String, port: Int) -> String? {
        var length = 0
        var type: Int32 = 0
        guard let raw = libssh2_session_hostkey(session, &length, &type), length > 0 else {
            return "no host key"
        }
        let blob = Array(UnsafeRawBufferPointer(start: raw, count: length).bindMemory(to: UInt8.self))
        switch policy {
        case .pinnedKey(_, let pinned):
            return blob == pinned ? nil : "host key differs from the pinned key"
        case .fingerprint(let pinned):
            guard let hash = libssh2_hostkey_hash(session, LIBSSH2_HOSTKEY_HASH_SHA256) else {
                return "no SHA256 fingerprint"
            }
            let digest = Array(UnsafeRawBufferPointer(start: hash, count: 32).bindMemory(to: UInt8.self))
            return digest == pinned ? nil : "host key fingerprint differs from the pinned one"
        case .knownHosts(let path):
            return trustOnFirstUse(session, blob: blob, keyBits: keyBits(type), ip: ip, port: port, path: path)
        }
    }

    static func keyBits(_ hostKeyType: Int32) -> Int32 {
        switch hostKeyType {
        case LIBSSH2_HOSTKEY_TYPE_RSA: return CSSH2_KH_KEY_SSHRSA
        case LIBSSH2_HOSTKEY_TYPE_DSS: return CSSH2_KH_KEY_SSHDSS
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return CSSH2_KH_KEY_ECDSA_256
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return CSSH2_KH_KEY_ECDSA_384
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return CSSH2_KH_KEY_ECDSA_521
        case LIBSSH2_HOSTKEY_TYPE_ED25519: return CSSH2_KH_KEY_ED25519
        default: return CSSH2_KH_KEY_UNKNOWN
        }
    }

    /// OpenSSH's host column: the bare address on port 22, `[ip]:port` elsewhere.
    static func hostColumn(ip: String, port: Int) -> String { port == 22 ? ip : "[\(ip)]:\(port)" }

    /// known_hosts is read, checked, extended and rewritten by the tunnel thread and the c2s thread: one lock for
    /// the whole sequence, so two first-use records cannot write `known_hosts.tmp` at once or lose each other.
    static let fileLock = Lock()

    static func trustOnFirstUse(_ session: OpaquePointer, blob: [UInt8], keyBits: Int32, ip: String, port: Int,
                                path: String) -> String? {
        fileLock.lock()
        defer { fileLock.unlock() }
        guard keyBits != CSSH2_KH_KEY_UNKNOWN else { return "unsupported host key type" }
        guard let hosts = libssh2_knownhost_init(session) else { return "cannot create a known_hosts store" }
        defer { libssh2_knownhost_free(hosts) }
        if access(path, F_OK) == 0 && libssh2_knownhost_readfile(hosts, path, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0 {
            return "cannot read \(path)"
        }
        // port -1: match `[ip]:port` entries only; libssh2 would otherwise fall back to port-less ones (§2)
        let host = hostColumn(ip: ip, port: port)
        let rc = blob.withUnsafeBufferPointer { key -> Int32 in
            key.withMemoryRebound(to: CChar.self) { chars in
                libssh2_knownhost_checkp(hosts, host, -1, chars.baseAddress, blob.count,
                                         CSSH2_KH_PLAIN_RAW | keyBits, nil)
            }
        }
        switch rc {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH: return nil
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH: return "host key changed (known_hosts)"
        case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND: break
        default: return "known_hosts check failed"
        }
        // A key of another type already recorded for this host reads as MISMATCH without type bits: a server that
        // suddenly offers only a different algorithm is refused rather than trusted anew.
        let anyType = blob.withUnsafeBufferPointer { key -> Int32 in
            key.withMemoryRebound(to: CChar.self) { chars in
                libssh2_knownhost_checkp(hosts, host, -1, chars.baseAddress, blob.count, CSSH2_KH_PLAIN_RAW, nil)
            }
        }
        if anyType == LIBSSH2_KNOWNHOST_CHECK_MISMATCH { return "host known with a key of another type" }
        let added = blob.withUnsafeBufferPointer { key -> Int32 in
            key.withMemoryRebound(to: CChar.self) { chars in
                libssh2_knownhost_addc(hosts, host, nil, chars.baseAddress, blob.count, nil, 0,
                                       CSSH2_KH_PLAIN_RAW | keyBits, nil)
            }
        }
        guard added == 0 else { return "cannot record the host key" }
        return writeAtomically(hosts, path: path)
    }

    /// temp + fsync + rename + fsync folder: a crash leaves the old file or the new one, never half of one.
    static func writeAtomically(_ hosts: OpaquePointer, path: String) -> String? {
        let folder = folderOf(path)
        // the state folder exists only once something was written there (a configured jwtSecretFile skips it)
        if access(folder, F_OK) != 0 { mkdir(folder, 0o700) }
        let temp = path + ".tmp"
        guard libssh2_knownhost_writefile(hosts, temp, LIBSSH2_KNOWNHOST_FILE_OPENSSH) == 0 else {
            unlink(temp)
            return "cannot write \(temp)"
        }
        let fd = cl_open(temp, O_RDWR, 0)
        guard fd >= 0 else { return "cannot reopen \(temp)" }
        fchmod(fd, 0o600)
        let synced = fsync(fd) == 0
        close(fd)
        guard synced, rename(temp, path) == 0 else {
            unlink(temp)
            return "cannot replace \(path): \(FileIO.errorText())"
        }
        return FileIO.syncFolder(folder)
    }

    static func folderOf(_ path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        let folder = String(decoding: path.utf8[..<slash], as: UTF8.self)
        return folder.isEmpty ? "/" : folder
    }
}
