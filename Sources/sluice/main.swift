import Appliance
import CLinux
import Relay

// Entry point: argv comes from /proc/self/cmdline (no CommandLine in Embedded Swift).
TextResidency.keepOffHugePages()
HeapTrim.keepFreedMemory()
let exitCode = CLI.run(arguments: CLI.processArguments())
exit(exitCode)
