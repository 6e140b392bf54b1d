// Plays the origin application against the tables clerk-sync writes, through
// the Prisma client that generate.mjs made (Prisma 7, query compiler and the
// "pg" driver adapter: no native engine).
//
//   DATABASE_URL=postgres://... node app.mjs <instructor clerkId> <student clerkId>
//
// On success prints one JSON line with what it read back and exits 0; on any
// error prints the error's message on stderr and exits 1.
import { PrismaPg } from "@prisma/adapter-pg";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

const [instructorClerkId, studentClerkId] = process.argv.slice(2);
if (process.argv.length !== 4 || !instructorClerkId || !studentClerkId) {
  fail("usage: DATABASE_URL=... node app.mjs <instructor clerkId> <student clerkId>");
}
const connectionString = process.env.DATABASE_URL;
if (!connectionString) fail("DATABASE_URL is not set");

let PrismaClient;
try {
  // CommonJS output of the "prisma-client-js" generator (see generate.mjs).
  ({ PrismaClient } = require("./generated/client/index.js"));
} catch (err) {
  fail(`cannot load the generated client (run generate.mjs first): ${err.message}`);
}

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString }) });

async function main() {
  const instructor = await prisma.instructor.findUnique({ where: { clerkId: instructorClerkId } });
  if (!instructor) throw new Error(`no Instructor with clerkId ${instructorClerkId}`);

  const course = await prisma.course.create({
    data: {
      title: "Origin app course",
      description: "Created by the origin app through Prisma",
      instructorId: instructor.id,
    },
  });

  const student = await prisma.student.findUnique({ where: { clerkId: studentClerkId } });
  if (!student) throw new Error(`no Student with clerkId ${studentClerkId}`);

  const enrollment = await prisma.enrollment.create({
    data: { studentId: student.id, courseId: course.id },
  });

  const withEnrollments = await prisma.student.findUnique({
    where: { clerkId: studentClerkId },
    include: { enrollments: { include: { course: true } } },
  });

  const bio = `Bio written by the origin app for ${instructorClerkId}`;
  await prisma.instructor.update({ where: { id: instructor.id }, data: { bio } });
  const reread = await prisma.instructor.findUnique({
    where: { clerkId: instructorClerkId },
    select: { bio: true },
  });

  return {
    instructorId: instructor.id,
    studentId: student.id,
    studentEmail: student.email,
    courseId: course.id,
    courseTitle: course.title,
    courseDescription: course.description,
    enrollmentId: enrollment.id,
    enrollmentCount: withEnrollments.enrollments.length,
    enrolledCourseIds: withEnrollments.enrollments.map((e) => e.course.id),
    enrolledCourseTitles: withEnrollments.enrollments.map((e) => e.course.title),
    bio: reread.bio,
  };
}

// Prisma's message alone can hide the column ("Null constraint violation on the
// (not available)"), so the Prisma error code and the database's own message
// follow it when there are any.
function describe(err) {
  const lines = [err?.message ?? String(err)];
  if (err?.code) lines.push(`prisma code: ${err.code}`);
  const cause = err?.meta?.driverAdapterError?.cause;
  if (cause?.originalMessage) {
    lines.push(`database: ${cause.originalMessage}${cause.originalCode ? ` (SQLSTATE ${cause.originalCode})` : ""}`);
  }
  return lines.join("\n");
}

let code = 0;
try {
  process.stdout.write(`${JSON.stringify(await main())}\n`);
} catch (err) {
  process.stderr.write(`${describe(err)}\n`);
  code = 1;
} finally {
  await prisma.$disconnect().catch(() => {});
}
process.exit(code);
