module image-clone-controller/bench/wanlink

go 1.22
