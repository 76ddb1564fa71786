// wanlink is a wide-area link in user space, for the WAN benchmark: it joins two TUN devices, one
// in this process's network namespace and one in another, and carries every IP packet between them
// as a WAN would: serialized at a rate, delayed, dropped with a probability, and dropped when the
// bottleneck's queue is full. It exists because this machine's kernel has no netem qdisc (tc says
// "Specified qdisc kind is unknown"); it does what `tc qdisc add … netem delay rate loss` would do,
// on packets of the link's MTU (no offloads), in both directions.
//
//	wanlink -a icc-wan0 -b icc-wan1 -netns /var/run/netns/NAME -delay 20ms -rate 200 -loss 0.001
//
// The devices are created by this process (and vanish when it exits); the caller gives them
// addresses and brings them up once it prints "ready".
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const (
	tunSetIff   = 0x400454ca
	iffTun      = 0x0001
	iffNoPi     = 0x1000
	cloneNewNet = 0x40000000
	sysSetns    = 308 // amd64
)

// openTun creates a TUN device named name in the calling thread's network namespace.
func openTun(name string) (*os.File, error) {
	fd, err := syscall.Open("/dev/net/tun", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	var ifr [40]byte
	copy(ifr[:16], name)
	*(*uint16)(unsafe.Pointer(&ifr[16])) = iffTun | iffNoPi
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), tunSetIff, uintptr(unsafe.Pointer(&ifr[0]))); errno != 0 {
		syscall.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, errno)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// openTunIn creates the device inside the network namespace at nsPath, then returns this thread to its own.
func openTunIn(nsPath, name string) (*os.File, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	own, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
	if err != nil {
		return nil, err
	}
	defer own.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	if _, _, errno := syscall.RawSyscall(sysSetns, target.Fd(), cloneNewNet, 0); errno != 0 {
		return nil, fmt.Errorf("setns %s: %w", nsPath, errno)
	}
	tun, openErr := openTun(name)
	if _, _, errno := syscall.RawSyscall(sysSetns, own.Fd(), cloneNewNet, 0); errno != 0 {
		// This thread is in the wrong namespace; it must not run anything else.
		panic(fmt.Sprintf("setns back: %v", errno))
	}
	return tun, openErr
}

type packet struct {
	data      []byte
	deliverAt time.Time
}

// direction carries packets from one device to the other: a FIFO bottleneck at `rate` bits per
// second holding at most `queue` of backlog, then `delay` of propagation, then delivery.
type direction struct {
	from, to     *os.File
	delay, queue time.Duration
	bitsPerSec   float64
	loss         float64
	carried      atomic.Int64
	dropped      atomic.Int64
}

func (d *direction) run() {
	pipe := make(chan packet, 1<<16)
	go func() {
		for p := range pipe {
			if wait := time.Until(p.deliverAt); wait > 0 {
				time.Sleep(wait)
			}
			if _, err := d.to.Write(p.data); err == nil {
				d.carried.Add(1)
			}
		}
	}()
	var free time.Time // when the bottleneck finishes sending what it holds
	buf := make([]byte, 65536)
	for {
		n, err := d.from.Read(buf)
		if err != nil {
			fmt.Fprintf(os.Stderr, "wanlink: read: %v\n", err)
			os.Exit(1)
		}
		now := time.Now()
		if free.Before(now) {
			free = now
		}
		if free.Sub(now) > d.queue || rand.Float64() < d.loss {
			d.dropped.Add(1)
			continue
		}
		free = free.Add(time.Duration(float64(n*8) / d.bitsPerSec * float64(time.Second)))
		pipe <- packet{data: append([]byte(nil), buf[:n]...), deliverAt: free.Add(d.delay)}
	}
}

func main() {
	a := flag.String("a", "icc-wan0", "the device in this namespace")
	b := flag.String("b", "icc-wan1", "the device in the other namespace")
	ns := flag.String("netns", "", "the other namespace (a path such as /var/run/netns/NAME)")
	delay := flag.Duration("delay", 20*time.Millisecond, "one-way delay (the round trip is twice this)")
	rate := flag.Float64("rate", 200, "bandwidth of each direction, Mbit/s")
	loss := flag.Float64("loss", 0.001, "probability that a packet is lost, each direction")
	queue := flag.Duration("queue", 50*time.Millisecond, "the bottleneck's buffer, as time at the link's rate")
	flag.Parse()
	if *ns == "" {
		fmt.Fprintln(os.Stderr, "wanlink: -netns is required")
		os.Exit(2)
	}
	near, err := openTun(*a)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wanlink: %v\n", err)
		os.Exit(1)
	}
	far, err := openTunIn(*ns, *b)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wanlink: %v\n", err)
		os.Exit(1)
	}
	link := func(from, to *os.File) *direction {
		return &direction{from: from, to: to, delay: *delay, queue: *queue, bitsPerSec: *rate * 1e6, loss: *loss}
	}
	out, back := link(near, far), link(far, near)
	go out.run()
	go back.run()
	fmt.Println("ready")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	fmt.Printf("carried %d/%d packets, dropped %d/%d (out/back)\n", out.carried.Load(), back.carried.Load(), out.dropped.Load(), back.dropped.Load())
}
