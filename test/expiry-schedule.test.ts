import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { ExpirySchedule } from '../src/transport/expiry-schedule.ts'

/** Something that records when it expired. */
function item(name: string, log: string[]) {
  return { name, expire: () => log.push(name) }
}

describe('ExpirySchedule', () => {
  it('expires each item once its time has come, in time order, several at one time', async () => {
    const log: string[] = []
    const schedule = new ExpirySchedule<ReturnType<typeof item>>()
    const now = Date.now()
    schedule.add(item('c', log), now + 90)
    schedule.add(item('a', log), now + 30)
    schedule.add(item('b1', log), now + 60)
    schedule.add(item('b2', log), now + 60)
    expect(schedule.size).toBe(4)
    await sleep(45)
    expect(log).toEqual(['a'])
    await sleep(70)
    expect(log).toEqual(['a', 'b1', 'b2', 'c'])
    expect(schedule.size).toBe(0)
  })

  it('never expires an item deleted before its time, and keeps the others of its time', async () => {
    const log: string[] = []
    const schedule = new ExpirySchedule<ReturnType<typeof item>>()
    const time = Date.now() + 40
    const gone = item('gone', log)
    const kept = item('kept', log)
    const alone = item('alone', log)
    schedule.add(gone, time)
    schedule.add(kept, time)
    schedule.add(alone, time + 10)
    schedule.delete(gone, time)
    schedule.delete(alone, time + 10)
    await sleep(80)
    expect(log).toEqual(['kept'])
  })

  it('expires at once an item whose time has passed', () => {
    const log: string[] = []
    const schedule = new ExpirySchedule<ReturnType<typeof item>>()
    schedule.add(item('late', log), Date.now() - 1)
    expect(log).toEqual(['late'])
    expect(schedule.size).toBe(0)
  })

  it('stays right after many deletions (stale times dropped) and an earlier time added later', async () => {
    const log: string[] = []
    const schedule = new ExpirySchedule<ReturnType<typeof item>>()
    const base = Date.now() + 60_000
    const churn = Array.from({ length: 500 }, (_, i) => item(`churn${i}`, log))
    churn.forEach((entry, i) => schedule.add(entry, base + i))
    churn.forEach((entry, i) => schedule.delete(entry, base + i))
    expect(schedule.size).toBe(0)
    const soon = Date.now()
    schedule.add(item('second', log), soon + 50)
    schedule.add(item('first', log), soon + 20)
    schedule.add(item('later', log), base)
    await sleep(90)
    expect(log).toEqual(['first', 'second'])
    schedule.clear()
    expect(schedule.size).toBe(0)
  })

  it('reaches a time beyond what one setTimeout can wait (2^31-1 ms) without firing early', async () => {
    const log: string[] = []
    const schedule = new ExpirySchedule<ReturnType<typeof item>>()
    schedule.add(item('far', log), Date.now() + 2 ** 31 + 1000)
    await sleep(20)
    expect(log).toEqual([])
    schedule.clear()
  })
})
