module github.com/seed3bccf95f/hotpatch/bench/gomonkey

go 1.26.0

require (
	github.com/agiledragon/gomonkey/v2 v2.13.0
	github.com/seed3bccf95f/hotpatch v0.0.0
)

require (
	github.com/ayoubfaouzi/pkcs7 v0.2.3 // indirect
	github.com/edsrzf/mmap-go v1.1.0 // indirect
	github.com/saferwall/pe v1.6.5 // indirect
	golang.org/x/arch v0.32.0 // indirect
	golang.org/x/crypto v0.33.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.22.0 // indirect
)

replace github.com/seed3bccf95f/hotpatch => ../..
