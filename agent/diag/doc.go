// Package diag runs the structured checks a tier-1 technician can run
// safely on a workstation (the console's "triage"): each check returns
// pass, warn, fail or unavailable, with the evidence behind the verdict and
// a hint saying what to do next, as a [desksidev1.CheckResult].
//
// A [Runner] runs the checks a [desksidev1.RunChecks] names (all of them
// when it names none) in parallel within its budget and returns a
// [desksidev1.CheckReport]. [Runner.Names] lists the checks.
//
// # Checks
//
//	network.interfaces  non-loopback interfaces that are up (administratively
//	                    and link) with a routable address; only link-local
//	                    addresses (169.254/16, fe80::/10) warn (DHCP failed);
//	                    none up fails.
//	network.gateway     default gateways (IPv4 and IPv6 routes); one answers
//	                    when its ARP / neighbour entry is complete or a TCP
//	                    connection to port 53 or 80 is accepted or refused
//	                    (unprivileged: no ICMP). None answering fails, some
//	                    not answering warns, no default route fails.
//	network.dns         resolves dns_name (default: the relay's host name,
//	                    else "localhost") with the system resolver, or with
//	                    the Go resolver sent to each of dns_servers. Slow
//	                    (over 1 s) warns; no answer fails.
//	network.https       GET https_url (default https://<relay>/) without
//	                    following redirects: any HTTP response passes (even
//	                    404: the server was reached), slower than 2 s or a
//	                    certificate expiring within 7 days warns, a
//	                    connection or TLS error fails with a hint naming the
//	                    likely cause.
//	network.proxy       the proxy variables of the agent's environment and of
//	                    the system's (/etc/environment); always passes.
//	disk.space          used % of each real file system against
//	disk.inodes         the thresholds; the worst mount decides.
//	disk.smart          smartctl's health verdict for each disk it finds.
//	memory.pressure     used % (of total minus available), pressure stall
//	                    information and the three largest processes.
//	memory.swap         swap used %.
//	cpu.load            1- and 5-minute load average per logical CPU.
//	cpu.hogs            processes above cpu_hog_percent of one core over a
//	                    sampling window of up to 1 s.
//	services.failed     systemd units in the failed state.
//	logs.errors         error-priority journal entries of the current boot.
//	updates.pending     pending package updates (apt simulation, dnf cache).
//	updates.reboot      whether packages asked for a reboot.
//	time.sync           the kernel's clock discipline state (adjtimex) and
//	                    the NTP setting (timedatectl).
//	system.uptime       uptime against uptime_warn.
//
// Thresholds and targets come from the request's [desksidev1.CheckConfig];
// zero values take the defaults documented there. Thresholds compare with
// ">=": a disk 95.0 % full fails with the default fail threshold of 95.
// cpu.load decides on the 5-minute average; the 1-minute average alone can
// only warn. memory.pressure also warns when tasks stalled on memory more
// than 10 % of the last minute ("full" PSI avg60). A NaN, infinite or
// negative threshold is replaced by its default (and logged).
//
// # Status and the overall verdict
//
// The report's overall status is the worst result, in the order
// FAIL > WARN > UNAVAILABLE > PASS: an overall PASS means every requested
// check ran and passed, while a check that could not run ranks below any
// finding but above a pass, since it gives no assurance.
//
// # Budget
//
// The budget defaults to 5 s and is capped at 60 s. Checks get a context
// canceled when the budget runs out; those that wait on the network or on
// tools stop a margin earlier (a tenth of the budget, at most 500 ms) so
// that they still report a verdict of their own. A check still running
// when the budget runs out is reported as UNAVAILABLE ("did not finish
// within the 5s budget") and abandoned: Run returns at once, and the
// canceled context makes the check end shortly after. Each result carries
// its duration; durations and the budget use the monotonic clock, while
// [Options.Now] stamps the report and dates evidence.
//
// # Safety
//
// Checks only read: files under /proc and /etc, system calls that query
// (statfs, adjtimex, netlink dumps), DNS and HTTP requests, and external
// tools run with fixed argument lists (never through a shell) in their own
// process group, killed when the budget runs out: smartctl --scan-open and
// -H, systemctl --failed, journalctl, timedatectl show, apt-get -s (a
// simulation, without taking the dpkg lock) and dnf -C check-update (cache
// only, no download). Their output is read up to a cap, in the C locale.
//
// Every string reported (summaries, hints, evidence) is made valid UTF-8,
// stripped of control characters and terminal escapes and capped (see
// package wire; the relay caps again); evidence lists are capped too, with
// a last entry counting what was left out. Credentials in proxy and
// target URLs are redacted.
//
// # Platforms
//
// The portable checks (interfaces, DNS, HTTPS, proxy variables, disks,
// SMART, memory, swap, load, CPU hogs, uptime) run everywhere gopsutil
// does, except the load average on Windows, which has none, and the
// process lists (CPU hogs, largest processes), which come from
// agent/proctab and need cgo on macOS. What reads
// Linux interfaces (routes and neighbours from /proc and netlink, PSI,
// systemd, the journal, apt and dnf, reboot-required, adjtimex, the
// /etc/environment proxy settings) has stubs elsewhere that return
// [ErrNotSupported]; those checks report UNAVAILABLE "not supported on
// <os> yet".
package diag
