OPENQASM 3.0;
include "stdgates.inc";
// Free parameters are declared as inputs; `aqrt sweep` takes one --param NAME=START:STOP:NUM for each:
//   aqrt sweep examples/ansatz.qasm --param theta=0:3.1416:41 --param phi=-1:1:21 -o ZZ -o XI --plot landscape.png
input float[64] theta;
input float[64] phi;
qubit[2] q;
ry(theta) q[0];
cx q[0], q[1];
rz(phi) q[1];
h q[1];
