// swift-tools-version:5.9
// EMBEDDED=1 builds the product with Embedded Swift (the only way this toolchain reaches aarch64 Linux);
// without it the same sources build as full Swift for `swift test`. SLUICE_CRYPTO picks libssh2's backend.
// The Makefile sets both and passes -I/-L for the C libraries it builds (tools/deps.sh).
import PackageDescription
import Foundation

let environment = ProcessInfo.processInfo.environment
let embedded = environment["EMBEDDED"] == "1"
let crypto = environment["SLUICE_CRYPTO"] ?? "openssl"

var swiftSettings: [SwiftSetting] = crypto == "mbedtls" ? [.define("CRYPTO_MBEDTLS")] : []
if embedded {
    swiftSettings += [.enableExperimentalFeature("Embedded"), .unsafeFlags(["-wmo", "-Osize", "-Xfrontend", "-function-sections"])]
    // the small flavour's product links musl (tools/build-product.sh)
    if crypto == "mbedtls" { swiftSettings.append(.define("LIBC_MUSL")) }
}

// Static link order: libssh2 before its crypto backend. One crypto library per flavour: it serves libssh2 and Sluice's
// own cryptography (Sources/CCrypto) alike.
let cLibraries: [LinkerSetting] = (crypto == "mbedtls"
    ? ["ssh2", "microhttpd", "mbedcrypto"]
    : ["ssh2", "microhttpd", "crypto", "z"]).map { .linkedLibrary($0) }

var targets: [Target] = [
    .systemLibrary(name: "CLinux", path: "Sources/CLinux"),
    .systemLibrary(name: "CSSH2", path: "Sources/CSSH2"),
    .systemLibrary(name: "CMicroHTTPD", path: "Sources/CMicroHTTPD"),
    // the product build replaces Embedded runtime entry points that are wrong (Sources/CSupport/EmbeddedRuntimeFixes.c)
    .target(name: "CSupport", path: "Sources/CSupport", cSettings: embedded ? [.define("SLUICE_EMBEDDED")] : []),
    // Sluice's own hashes, HMAC and PBKDF2 from the flavour's crypto library (openssl.c or mbedtls.c)
    .target(name: "CCrypto", path: "Sources/CCrypto",
            cSettings: crypto == "mbedtls" ? [.define("SLUICE_CRYPTO_MBEDTLS")] : []),
    .target(name: "Relay", dependencies: ["CLinux", "CSSH2", "CSupport"], swiftSettings: swiftSettings),
    .target(name: "Appliance", dependencies: ["Relay", "CLinux", "CCrypto", "CMicroHTTPD"], swiftSettings: swiftSettings),
    .executableTarget(name: "sluice", dependencies: ["Appliance", "Relay", "CLinux"],
                      swiftSettings: swiftSettings, linkerSettings: cLibraries),
]
if !embedded {
    targets += [
        .testTarget(name: "RelayTests", dependencies: ["Relay"], linkerSettings: cLibraries),
        .testTarget(name: "ApplianceTests", dependencies: ["Appliance"], linkerSettings: cLibraries),
    ]
}

// `make fuzz`: libFuzzer over the pure parsers (full Swift with -sanitize=fuzzer,address on every target)
if !embedded && environment["SLUICE_FUZZ"] == "1" {
    targets.append(.executableTarget(name: "SluiceFuzz", dependencies: ["Appliance", "Relay", "CLinux"],
                                     swiftSettings: [.unsafeFlags(["-parse-as-library"])], linkerSettings: cLibraries))
}

let package = Package(name: "Sluice", targets: targets)
